/**
 * One placement round, pure: from the store's view (jobs, tasks), the nodes
 * and `now`, what to write, what to stop and what to dispatch. The primary
 * carries it out: writes first, then stops, then each dispatch once its
 * record is durable.
 */
import type { Job, NodeInfo, PlacementStrategy, TaskInstance } from "../../common/types.js";
import { dispatched, failedEverywhere, preempted, type LifecycleAlert } from "../lifecycle/transitions.js";
import { placeTasks, type PlacementMetrics, type TaskToPlace } from "../scheduler/index.js";
import type { AllocationBuilder } from "./allocations.js";
import { mayUseReclaimed } from "../usage/reservations.js";
import type { Demand } from "../usage/estimate.js";

/** With reclamation on: what prod tasks lend per node (ReservationEstimates.reclaimableByNode). */
export interface RoundReclamation {
  reclaimable: ReadonlyMap<string, Demand>;
}

/** The part of the state store a round reads. */
export interface RoundView {
  readonly jobs: ReadonlyMap<string, Job>;
  tasksWhere(desired: TaskInstance["desired"], state: TaskInstance["state"]): Iterable<TaskInstance>;
}

export interface RoundDecision {
  /** Records to write before anything else (preempted, failed, new reasons). */
  writes: TaskInstance[];
  /** Tasks to stop on their node, with why. */
  stops: { task: TaskInstance; why: string }[];
  /** New dispatched records: each is written, then sent to its node. */
  dispatches: TaskInstance[];
  alerts: LifecycleAlert[];
  /** Per task left pending: the scheduler's metrics (why it was not placed). */
  unplaced: Map<string, PlacementMetrics>;
}

/** Tasks bound to a node, whatever is wanted of them: they hold its resources. */
export function holdingTasks(view: RoundView): Iterable<TaskInstance>[] {
  return [view.tasksWhere("run", "dispatched"), view.tasksWhere("run", "running"), view.tasksWhere("stop", "dispatched"), view.tasksWhere("stop", "running")];
}

export function placementRound(view: RoundView, nodes: readonly NodeInfo[], allocations: AllocationBuilder, now: number, reclamation?: RoundReclamation, defaultStrategy?: PlacementStrategy): RoundDecision {
  const decision: RoundDecision = { writes: [], stops: [], dispatches: [], alerts: [], unplaced: new Map() };
  const due: TaskInstance[] = [];
  const waiting: TaskInstance[] = [];
  for (const t of view.tasksWhere("run", "pending")) {
    if (!view.jobs.has(t.jobId)) continue;
    if ((t.notBefore ?? 0) <= now) due.push(t);
    else waiting.push(t);
  }
  if (due.length === 0) return decision;

  // Tasks about to be placed give up their reservation to the scheduler, which
  // checks it again; those still backing off keep theirs.
  const reserved = allocations.reservations(view.jobs, waiting);
  for (const group of holdingTasks(view)) allocations.reservations(view.jobs, group, reserved);

  // Restarts in place go first: at equal priority they keep the room they had.
  due.sort((a, b) => Number(b.stickyNode !== undefined) - Number(a.stickyNode !== undefined));
  const byId = new Map(due.map((t) => [t.id, t]));
  const input: TaskToPlace[] = due.map((t) => {
    const job = view.jobs.get(t.jobId) as Job;
    return {
      taskId: t.id,
      jobId: t.jobId,
      spec: job.spec,
      ...(job.packageDigest ? { packageDigest: job.packageDigest } : {}),
      ...(t.stickyNode ? { stickyNode: t.stickyNode } : {}),
      ...(t.avoidNodes?.length ? { avoidNodes: t.avoidNodes } : {}),
      ...(reclamation && mayUseReclaimed(job) ? { reclaimable: true } : {}),
    };
  });
  const result = placeTasks(input, { nodes, allocations: reserved, ...(reclamation ? { reclaimable: reclamation.reclaimable } : {}) }, { seed: now & 0xffff, ...(defaultStrategy ? { defaultStrategy } : {}) });

  const holders = new Map<string, TaskInstance>();
  if (result.preemptions.length > 0) for (const group of holdingTasks(view)) for (const t of group) holders.set(t.id, t);
  for (const v of result.preemptions) {
    const t = holders.get(v.victimTaskId);
    if (!t) continue;
    decision.stops.push({ task: t, why: `preempted by ${v.forTaskId}` });
    decision.writes.push(preempted(t, v.forTaskId, v.nodeId, now));
  }
  for (const u of result.unplaced) {
    const t = byId.get(u.taskId) as TaskInstance;
    if (u.everyUsableNodeAvoided) {
      const { next, alerts } = failedEverywhere(t, view.jobs.get(t.jobId) as Job, now);
      decision.writes.push(next);
      decision.alerts.push(...alerts);
      continue;
    }
    decision.unplaced.set(t.id, u.metrics);
    // Written only when it changed: a task that fits nowhere costs no write per round.
    const reason = `no node fits: ${u.summary}`;
    if (t.reason !== reason) decision.writes.push({ ...t, reason, updatedAt: now });
  }
  for (const p of result.placements) {
    const t = byId.get(p.taskId) as TaskInstance;
    const next = dispatched(t, p.nodeId, now, view.jobs.get(t.jobId)?.version ?? 0, p.devices);
    decision.dispatches.push(p.reclaimed ? { ...next, reclaimed: true } : next);
  }
  return decision;
}
