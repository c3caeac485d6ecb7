import type { Checker } from "../chain.js";
import { FEASIBLE } from "../reasons.js";

/** Tolerance for float noise in free-resource arithmetic (0.1 + 0.2 cores). */
export const RESOURCE_EPSILON = 1e-9;

/** cpu, memory and disk left on the node must cover the request; each shortage is its own dimension. */
export const resources: Checker = {
  name: "resources",
  static: false,
  preemptible: true,
  forClass(cls, { state, reasons }) {
    // Classes on reclaimed capacity are checked by reclaimed-resources.ts instead.
    if (cls.reclaimable && state.reclaimable !== undefined) return undefined;
    const cpuExhausted = reasons.code("cpu exhausted", { checker: this.name, dimension: "cpu" });
    const memoryExhausted = reasons.code("memory exhausted", { checker: this.name, dimension: "memory" });
    const diskExhausted = reasons.code("disk exhausted", { checker: this.name, dimension: "disk" });
    const { freeCpu, freeMemory, freeDisk } = state;
    const cpu = cls.cpu - RESOURCE_EPSILON;
    const memory = cls.memory - RESOURCE_EPSILON;
    const disk = cls.disk - RESOURCE_EPSILON;
    return {
      check: (node) => ((freeCpu[node] as number) < cpu ? cpuExhausted : (freeMemory[node] as number) < memory ? memoryExhausted : (freeDisk[node] as number) < disk ? diskExhausted : FEASIBLE),
    };
  },
};
