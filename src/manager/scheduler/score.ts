/**
 * Scorers. Every scorer that applies to a task is computed for every candidate
 * node (so final scores of different nodes are comparable) and the final score
 * is their mean.
 *
 * - binpack / spread: Nomad's BestFit v3 on cpu and memory. With f = the
 *   fraction of a resource left free after placing, total = 10^f_cpu + 10^f_mem
 *   lies in [2, 20]; binpack = (20 - total) / 18 rewards full nodes, spread =
 *   (total - 2) / 18 rewards empty ones. Both are in [0, 1].
 * - package-cached: 1 when the node already caches the task's package, else 0
 *   (only for tasks with a package digest): saves a download and a start delay.
 * - job-anti-affinity: -(instances of the job already on the node / job
 *   instances), clamped to [-1, 0], so a job does not pile onto one machine.
 */
import type { ClusterState } from "./cluster-state.js";
import { hasCachedPackage, type TaskClass } from "./task-class.js";

export const SCORER_BINPACK = "binpack";
export const SCORER_SPREAD = "spread";
export const SCORER_PACKAGE_CACHED = "package-cached";
export const SCORER_JOB_ANTI_AFFINITY = "job-anti-affinity";

function freeFractionAfter(free: number, allocatable: number, request: number): number {
  if (!(allocatable > 0)) return 0;
  const fraction = (free - request) / allocatable;
  return fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
}

/** binpack or spread score of placing `cls` on `node`, in [0, 1]. */
export function fitScore(cls: TaskClass, state: ClusterState, node: number): number {
  const cpu = freeFractionAfter(state.freeCpu[node] as number, state.allocatableCpu[node] as number, cls.cpu);
  const memory = freeFractionAfter(state.freeMemory[node] as number, state.allocatableMemory[node] as number, cls.memory);
  // exp(x·ln10) = 10^x, and several times faster than Math.pow in V8: this runs for every candidate.
  const total = Math.exp(cpu * Math.LN10) + Math.exp(memory * Math.LN10);
  return cls.spread ? (total - 2) / 18 : (20 - total) / 18;
}

export function antiAffinityScore(cls: TaskClass, node: number): number {
  const colocated = cls.jobCounts.get(node);
  if (colocated === undefined || colocated === 0) return 0;
  return -Math.min(1, colocated / cls.instances);
}

/** The final, normalized score: the mean of all applicable scorers. */
export function nodeScore(cls: TaskClass, state: ClusterState, node: number): number {
  const fit = fitScore(cls, state, node);
  const anti = antiAffinityScore(cls, node);
  if (cls.packageDigest === undefined) return (fit + anti) / 2;
  return (fit + anti + (hasCachedPackage(cls, state.nodes, node) ? 1 : 0)) / 3;
}

/** Every scorer's value, by name, for reporting the chosen node. */
export function scoreBreakdown(cls: TaskClass, state: ClusterState, node: number): Record<string, number> {
  const scores: Record<string, number> = {
    [cls.spread ? SCORER_SPREAD : SCORER_BINPACK]: fitScore(cls, state, node),
    [SCORER_JOB_ANTI_AFFINITY]: antiAffinityScore(cls, node),
  };
  if (cls.packageDigest !== undefined) scores[SCORER_PACKAGE_CACHED] = hasCachedPackage(cls, state.nodes, node) ? 1 : 0;
  return scores;
}
