import type { Checker } from "../chain.js";
import { FEASIBLE } from "../reasons.js";

/** A job's `placement.maxPerNode`: no more than that many of its instances on one node. */
export const maxPerNode: Checker = {
  name: "max-per-node",
  static: false,
  preemptible: false,
  forClass(cls, { reasons }) {
    const max = cls.maxPerNode;
    if (max === Infinity) return undefined;
    const reason = reasons.code(`job spread: ${max} per node reached`, { checker: this.name });
    const counts = cls.jobCounts;
    return { check: (node) => ((counts.get(node) ?? 0) >= max ? reason : FEASIBLE) };
  },
};
