import type { Checker } from "../chain.js";
import { FEASIBLE } from "../reasons.js";

/** A task that exhausted its restarts on some nodes is not placed there again. */
export const avoidedNodes: Checker = {
  name: "avoided-nodes",
  static: true,
  preemptible: false,
  signature(cls) {
    return JSON.stringify(cls.avoidNodes);
  },
  forClass(cls, { state, reasons }) {
    if (cls.avoidNodes.length === 0) return undefined;
    const avoided = new Set<number>();
    for (const id of cls.avoidNodes) {
      const index = state.indexOf(id);
      if (index !== undefined) avoided.add(index);
    }
    const reason = reasons.code("avoided after failures", { checker: this.name });
    return { check: (node) => (avoided.has(node) ? reason : FEASIBLE) };
  },
};
