import type { Checker } from "../chain.js";
import { FEASIBLE, type ReasonTable } from "../reasons.js";
import type { TaskClass } from "../task-class.js";

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
    const { cpuExhausted, memoryExhausted, diskExhausted, cpu, memory, disk } = resourceCheckTerms(this.name, cls, reasons);
    const { freeCpu, freeMemory, freeDisk } = state;
    return {
      check: (node) => ((freeCpu[node] as number) < cpu ? cpuExhausted : (freeMemory[node] as number) < memory ? memoryExhausted : (freeDisk[node] as number) < disk ? diskExhausted : FEASIBLE),
    };
  },
};

/** What a resources check of `cls` compares with: its reason codes per dimension and its request less float noise. */
export function resourceCheckTerms(checker: string, cls: TaskClass, reasons: ReasonTable) {
  return {
    cpuExhausted: reasons.code("cpu exhausted", { checker, dimension: "cpu" }),
    memoryExhausted: reasons.code("memory exhausted", { checker, dimension: "memory" }),
    diskExhausted: reasons.code("disk exhausted", { checker, dimension: "disk" }),
    cpu: cls.cpu - RESOURCE_EPSILON,
    memory: cls.memory - RESOURCE_EPSILON,
    disk: cls.disk - RESOURCE_EPSILON,
  };
}
