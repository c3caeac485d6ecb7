import type { Checker } from "../chain.js";
import { FEASIBLE } from "../reasons.js";

/**
 * A task restarting in place may only go back to its node (where its
 * reservation was kept while it waited out the backoff). When that node is no
 * longer ready the task is free to go anywhere. The index hint spares the scan
 * every other node.
 */
export const stickyRestart: Checker = {
  name: "sticky-restart",
  static: true,
  preemptible: false,
  signature(cls) {
    return cls.stickyNode ?? "";
  },
  forClass(cls, { state, reasons }) {
    if (cls.stickyNode === undefined) return undefined;
    const home = state.indexOf(cls.stickyNode);
    if (home === undefined || state.ready[home] !== 1) return undefined;
    const reason = reasons.code(`restarts in place on ${cls.stickyNode}`, { checker: this.name });
    return { check: (node) => (node === home ? FEASIBLE : reason), only: { nodes: [home], reason } };
  },
};
