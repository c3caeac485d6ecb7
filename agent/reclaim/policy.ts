/**
 * What the agent does about reclaimed tasks (docs/reclamation.md), pure: from
 * the machine's allocatable cpu and memory, every running task's request and
 * latest usage, and `now`, the cpu cap of each reclaimed task and which of
 * them to evict.
 *
 * Every other task (prod, or batch placed on free capacity) is guarded: it
 * keeps what it uses (cpu: plus what it waited for on the run queue, see
 * run-queue.ts) plus `margin` of that, as the manager's estimate, up to its
 * request. What the
 * guards leave of the machine is what reclaimed tasks may have:
 * - cpu: while their requests fit in it they run uncapped (at their own
 *   quota); once they do not, each is throttled to its share of it (in
 *   proportion to its request), so the others' rising use is served at once;
 * - memory cannot be throttled: reclaimed tasks using more than the guards
 *   leave are evicted at once;
 * - throttled for `evictAfterMs` without a break: evicted.
 * Evictions take the youngest reclaimed tasks first (the least work lost)
 * until the rest fit.
 */

export interface TaskLoad {
  taskId: string;
  attempt: number;
  /** Placed on reclaimed capacity. */
  reclaimed: boolean;
  request: { cpu: number; memory: number };
  /** Cores over the last interval (with run-queue wait for tasks that are not reclaimed) and bytes now; absent before the first reading (then the whole request is guarded). */
  usage?: { cpu: number; memory: number };
  startedAt?: number;
}

export interface ReclaimOptions {
  margin: number;
  evictAfterMs: number;
}

export interface ReclaimInput {
  allocatable: { cpu: number; memory: number };
  tasks: readonly TaskLoad[];
  now: number;
  /** Since when reclaimed tasks have been throttled without a break (the previous decision's `throttledSince`). */
  throttledSince?: number;
}

export interface ReclaimDecision {
  /** Per reclaimed task id: its cpu cap in cores (its request when not throttled). */
  caps: Map<string, number>;
  evict: { taskId: string; attempt: number; why: string }[];
  /** Pass back with the next input; absent when nothing is throttled. */
  throttledSince?: number;
}

/** The least cap the kernel accepts (1 ms per 100 ms period). */
export const MIN_CAP_CORES = 0.01;
const EPSILON = 1e-9;

function guarded(request: number, used: number | undefined, margin: number): number {
  return used === undefined ? request : Math.min(request, used * (1 + margin));
}

export function decideReclaim(input: ReclaimInput, opts: ReclaimOptions): ReclaimDecision {
  const caps = new Map<string, number>();
  const reclaimed = input.tasks.filter((t) => t.reclaimed);
  if (reclaimed.length === 0) return { caps, evict: [] };
  let cpuLeft = input.allocatable.cpu;
  let memoryLeft = input.allocatable.memory;
  for (const t of input.tasks) {
    if (t.reclaimed) continue;
    cpuLeft -= guarded(t.request.cpu, t.usage?.cpu, opts.margin);
    memoryLeft -= guarded(t.request.memory, t.usage?.memory, opts.margin);
  }
  cpuLeft = Math.max(0, cpuLeft);

  // Youngest last, so evictions pop from the end.
  const keep = [...reclaimed].sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0));
  const cpuWanted = (ts: readonly TaskLoad[]) => ts.reduce((s, t) => s + t.request.cpu, 0);
  const memoryUsed = (ts: readonly TaskLoad[]) => ts.reduce((s, t) => s + (t.usage?.memory ?? 0), 0);
  const evict: ReclaimDecision["evict"] = [];

  const cpuShort = cpuWanted(keep) > cpuLeft + EPSILON;
  const throttledSince = cpuShort ? (input.throttledSince ?? input.now) : undefined;
  const cpuShortTooLong = throttledSince !== undefined && input.now - throttledSince >= opts.evictAfterMs;
  while (keep.length > 0 && memoryUsed(keep) > memoryLeft + EPSILON) {
    const t = keep.pop() as TaskLoad;
    evict.push({ taskId: t.taskId, attempt: t.attempt, why: "memory needed by the tasks whose reservation it used" });
  }
  if (cpuShortTooLong) {
    while (keep.length > 0 && cpuWanted(keep) > cpuLeft + EPSILON) {
      const t = keep.pop() as TaskLoad;
      evict.push({ taskId: t.taskId, attempt: t.attempt, why: `cpu needed by the tasks whose reservation it used (throttled ${Math.round((input.now - (throttledSince as number)) / 1000)} s)` });
    }
  }

  const wanted = cpuWanted(keep);
  const short = wanted > cpuLeft + EPSILON;
  for (const t of keep) caps.set(t.taskId, short ? Math.max(MIN_CAP_CORES, (cpuLeft * t.request.cpu) / wanted) : t.request.cpu);
  return { caps, evict, ...(short ? { throttledSince: throttledSince ?? input.now } : {}) };
}
