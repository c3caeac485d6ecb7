import type { Checker } from "../chain.js";
import { FEASIBLE } from "../reasons.js";

/** Only ready nodes take work: draining and lost ones are skipped with their state as the reason. */
export const nodeState: Checker = {
  name: "node-state",
  static: true,
  preemptible: false,
  signature(_cls) {
    return "";
  },
  forClass(_cls, { state, reasons }) {
    const draining = reasons.code("node draining", { checker: this.name });
    const lost = reasons.code("node lost", { checker: this.name });
    return { check: (node) => (state.ready[node] === 1 ? FEASIBLE : state.nodes[node]?.state === "draining" ? draining : lost) };
  },
};
