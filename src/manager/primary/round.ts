/**
 * One placement round, pure: from the store's view (jobs, tasks), the nodes
 * and `now`, what to write, what to stop and what to dispatch. The primary
 * carries it out: writes first, then stops, then each dispatch once its
 * record is durable. With scheduler workers (`manager.schedulerWorkers`), the
 * placement itself runs in them and is committed against node generations
 * (src/manager/placement/); the round around it is the same.
 */
import type { Job, NodeInfo, PlacementStrategy, TaskInstance } from "../../common/types.js";
import { dispatched, failedEverywhere, preempted, type LifecycleAlert } from "../lifecycle/transitions.js";
import { placeConcurrently } from "../placement/concurrent.js";
import type { SchedulerWorkers } from "../placement/workers.js";
import { placeTasks, type Allocation, type ClusterSnapshot, type PlacementMetrics, type PlacementResult, type SchedulerOptions, type TaskToPlace } from "../scheduler/index.js";
import type { AllocationBuilder } from "./allocations.js";
import { mayUseReclaimed } from "../usage/reservations.js";
import type { Demand } from "../usage/estimate.js";

/** With reclamation on: what prod tasks lend per node (ReservationEstimates.reclaimableByNode). */
export interface RoundReclamation {
  reclaimable: ReadonlyMap<string, Demand>;
}

/** What a round places with besides the store: reclaimed capacity and the cell's default strategy. */
export interface RoundOptions {
  reclamation?: RoundReclamation | undefined;
  defaultStrategy?: PlacementStrategy | undefined;
  /** MAX_TASKS_PER_ROUND unless set. */
  maxTasks?: number | undefined;
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
  /** Tasks were due beyond MAX_TASKS_PER_ROUND: the next round places them. */
  more: boolean;
}

/**
 * A round places at most this many tasks, highest priority first; the rest
 * stay pending for the next round, which the primary requests at once. So a
 * round holds the primary's event loop for tens of milliseconds, not seconds
 * (a ZooKeeper session lives only as long as its heartbeats are answered),
 * and submissions are answered between rounds however much is pending.
 */
export const MAX_TASKS_PER_ROUND = 5_000;

/** Tasks bound to a node, whatever is wanted of them: they hold its resources. */
export function holdingTasks(view: RoundView): Iterable<TaskInstance>[] {
  return [view.tasksWhere("run", "dispatched"), view.tasksWhere("run", "running"), view.tasksWhere("stop", "dispatched"), view.tasksWhere("stop", "running")];
}

interface RoundInput {
  decision: RoundDecision;
  input: TaskToPlace[];
  reserved: Allocation[];
  byId: Map<string, TaskInstance>;
}

/** The tasks due for placement and the reservations they are placed around; undefined when none is due. */
function roundInput(view: RoundView, allocations: AllocationBuilder, now: number, reclamation: RoundReclamation | undefined, maxTasks = MAX_TASKS_PER_ROUND): RoundInput | undefined {
  const decision = emptyDecision();
  const due: TaskInstance[] = [];
  const waiting: TaskInstance[] = [];
  for (const t of view.tasksWhere("run", "pending")) {
    if (!view.jobs.has(t.jobId)) continue;
    if ((t.notBefore ?? 0) <= now) due.push(t);
    else waiting.push(t);
  }
  if (due.length === 0) return undefined;
  if (due.length > maxTasks) {
    // Highest priority first, so the tasks left for the next round are never ones this round's would preempt.
    const priority = (t: TaskInstance) => view.jobs.get(t.jobId)?.spec.priority ?? 0;
    due.sort((a, b) => priority(b) - priority(a) || Number(b.stickyNode !== undefined) - Number(a.stickyNode !== undefined));
    due.length = maxTasks;
    decision.more = true;
  }

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
  return { decision, input, reserved, byId };
}

function emptyDecision(): RoundDecision {
  return { writes: [], stops: [], dispatches: [], alerts: [], unplaced: new Map(), more: false };
}

export function placementRound(view: RoundView, nodes: readonly NodeInfo[], allocations: AllocationBuilder, now: number, opts: RoundOptions = {}): RoundDecision {
  const round = roundInput(view, allocations, now, opts.reclamation, opts.maxTasks);
  if (round === undefined) return emptyDecision();
  return decide(view, round, placeTasks(round.input, snapshotOf(nodes, round, opts), schedulerOptions(now, opts)), now);
}

function snapshotOf(nodes: readonly NodeInfo[], round: RoundInput, opts: RoundOptions): ClusterSnapshot {
  return { nodes, allocations: round.reserved, ...(opts.reclamation ? { reclaimable: opts.reclamation.reclaimable } : {}) };
}

function schedulerOptions(now: number, opts: RoundOptions): SchedulerOptions {
  return { seed: now & 0xffff, ...(opts.defaultStrategy ? { defaultStrategy: opts.defaultStrategy } : {}) };
}

/**
 * The plan committer checks cpu, memory, disk and ports against node
 * generations (placement/commit.ts), not device instances or lent capacity:
 * a round that involves either is placed in the main thread.
 */
function workersCanPlace(nodes: readonly NodeInfo[], round: RoundInput, opts: RoundOptions): boolean {
  if (opts.reclamation) return false;
  return !nodes.some((n) => n.devices !== undefined && n.devices.length > 0) && !round.input.some((t) => (t.spec.resources.devices?.length ?? 0) > 0);
}

/** The same round, placed by the scheduler workers on snapshots and committed against node generations (placement/). */
export async function concurrentPlacementRound(view: RoundView, nodes: readonly NodeInfo[], allocations: AllocationBuilder, now: number, workers: SchedulerWorkers, opts: RoundOptions = {}): Promise<RoundDecision> {
  const round = roundInput(view, allocations, now, opts.reclamation, opts.maxTasks);
  if (round === undefined) return emptyDecision();
  const snapshot = snapshotOf(nodes, round, opts);
  const result = workersCanPlace(nodes, round, opts) ? await placeConcurrently(workers, round.input, snapshot, schedulerOptions(now, opts)) : placeTasks(round.input, snapshot, schedulerOptions(now, opts));
  return decide(view, round, result, now);
}

function decide(view: RoundView, { decision, byId }: RoundInput, result: PlacementResult, now: number): RoundDecision {
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
