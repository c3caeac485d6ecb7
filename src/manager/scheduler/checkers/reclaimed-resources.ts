import type { Checker } from "../chain.js";
import { FEASIBLE } from "../reasons.js";
import { resourceCheckTerms } from "./resources.js";

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
    const { cpuExhausted, memoryExhausted, diskExhausted, cpu, memory, disk } = resourceCheckTerms(this.name, cls, reasons);
    const { freeCpu, freeMemory, freeDisk } = state;
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
