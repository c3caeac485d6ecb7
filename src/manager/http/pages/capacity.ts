import type { Job, NodeInfo, Resources, TaskInstance } from "../../../common/types.js";

/**
 * Capacity, use and fragmentation of a cell, computed from the manager's
 * state: pure functions so the overview's numbers are unit-testable.
 */

export const ZERO: Resources = Object.freeze({ cpu: 0, memory: 0, disk: 0 });

export function add(a: Resources, b: Resources): Resources {
  return { cpu: a.cpu + b.cpu, memory: a.memory + b.memory, disk: a.disk + b.disk };
}

export function sub(a: Resources, b: Resources): Resources {
  return { cpu: Math.max(0, a.cpu - b.cpu), memory: Math.max(0, a.memory - b.memory), disk: Math.max(0, a.disk - b.disk) };
}

export function fits(want: Resources, free: Resources): boolean {
  // A small epsilon: cpu is fractional and sums of 0.1 drift.
  return want.cpu <= free.cpu + 1e-9 && want.memory <= free.memory && want.disk <= free.disk;
}

/** Tasks that hold resources on their node. */
export function holdsResources(t: TaskInstance): boolean {
  return (t.state === "running" || t.state === "dispatched") && t.nodeId !== undefined;
}

/** Resources held on each node by its running/dispatched tasks. */
export function usedByNode(jobs: ReadonlyMap<string, Job>, tasks: Iterable<TaskInstance>): Map<string, Resources> {
  const used = new Map<string, Resources>();
  for (const t of tasks) {
    const job = jobs.get(t.jobId);
    if (!job || !holdsResources(t)) continue;
    used.set(t.nodeId!, add(used.get(t.nodeId!) ?? ZERO, job.spec.resources));
  }
  return used;
}

export interface CellCapacity {
  /** Sum of allocatable over nodes that are not lost. */
  allocatable: Resources;
  /** Sum of resources of running/dispatched tasks on those nodes. */
  used: Resources;
}

export function cellCapacity(nodes: readonly NodeInfo[], used: ReadonlyMap<string, Resources>): CellCapacity {
  let allocatable = ZERO;
  let inUse = ZERO;
  for (const n of nodes) {
    if (n.state === "lost") continue;
    allocatable = add(allocatable, n.allocatable);
    inUse = add(inUse, used.get(n.id) ?? ZERO);
  }
  return { allocatable, used: inUse };
}

export interface Fragmentation {
  /** How many tasks wait for a place. */
  pendingTasks: number;
  /** Free resources on ready nodes where none of the pending tasks fits. */
  stranded: Resources;
  /** Those nodes. */
  strandedNodes: string[];
  /** Free resources on all ready nodes, for scale. */
  free: Resources;
}

/**
 * Resources are "stranded" on a ready node when there is pending work but no
 * pending task fits in what is left there: free on paper, useless in fact.
 * Without pending tasks nothing is stranded (nothing is waiting for room).
 */
export function fragmentation(nodes: readonly NodeInfo[], jobs: ReadonlyMap<string, Job>, tasks: Iterable<TaskInstance>, used: ReadonlyMap<string, Resources>): Fragmentation {
  const wants: Resources[] = [];
  for (const t of tasks) {
    const job = jobs.get(t.jobId);
    if (job && t.state === "pending" && t.desired === "run") wants.push(job.spec.resources);
  }
  let stranded = ZERO;
  let free = ZERO;
  const strandedNodes: string[] = [];
  for (const n of nodes) {
    if (n.state !== "ready") continue;
    const left = sub(n.allocatable, used.get(n.id) ?? ZERO);
    free = add(free, left);
    if (wants.length > 0 && !wants.some((w) => fits(w, left))) {
      stranded = add(stranded, left);
      strandedNodes.push(n.id);
    }
  }
  return { pendingTasks: wants.length, stranded, strandedNodes, free };
}
