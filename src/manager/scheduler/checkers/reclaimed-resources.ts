import type { Checker } from "../chain.js";
import { FEASIBLE } from "../reasons.js";
import { RESOURCE_EPSILON } from "./resources.js";

/**
 * The resources check of a class that may use reclaimed capacity
 * (reclaim.ts): cpu and memory left on the node plus what its prod tasks
 * reserved but do not use must cover the request; disk is never lent. It
 * replaces `resources` for these classes only.
 */
export const reclaimedResources: Checker = {
  name: "reclaimed-resources",
  static: false,
  preemptible: true,
  forClass(cls, { state, reasons }) {
    const lent = state.reclaimable;
    if (!cls.reclaimable || lent === undefined) return undefined;
    const cpuExhausted = reasons.code("cpu exhausted", { checker: this.name, dimension: "cpu" });
    const memoryExhausted = reasons.code("memory exhausted", { checker: this.name, dimension: "memory" });
    const diskExhausted = reasons.code("disk exhausted", { checker: this.name, dimension: "disk" });
    const { freeCpu, freeMemory, freeDisk } = state;
    const cpu = cls.cpu - RESOURCE_EPSILON;
    const memory = cls.memory - RESOURCE_EPSILON;
    const disk = cls.disk - RESOURCE_EPSILON;
    return {
      check: (node) =>
        (freeCpu[node] as number) + (lent.cpu[node] as number) < cpu
          ? cpuExhausted
          : (freeMemory[node] as number) + (lent.memory[node] as number) < memory
            ? memoryExhausted
            : (freeDisk[node] as number) < disk
              ? diskExhausted
              : FEASIBLE,
    };
  },
};
