/**
 * Concurrent placement, Omega style: the pending tasks are split by job among
 * the scheduler workers, which plan in parallel on one snapshot of the cell;
 * each plan is committed as it arrives against the per-node generations
 * (commit.ts). Tasks whose placement conflicted are planned again on a newer
 * snapshot; the last attempt plans in this thread on the ledger as it is,
 * where nothing can conflict, so every task ends placed or explained.
 */
import { placeTasks, type Allocation, type ClusterSnapshot, type PlacementResult, type SchedulerOptions, type TaskToPlace } from "../scheduler/index.js";
import { commitPlan, judgePlan, type Plan } from "./commit.js";
import { CellLedger } from "./ledger.js";
import type { SchedulerWorkers } from "./workers.js";

/** Attempts per round: worker attempts, then one in this thread. */
export const PLACEMENT_ATTEMPTS = 3;

export interface ConcurrentResult extends PlacementResult {
  /** Placements rejected at commit because their node changed and no longer fit. */
  conflicts: number;
  /** Planning attempts made (1 when nothing conflicted). */
  attempts: number;
}

/** Jobs spread over `ways` groups, each job whole (its spread limit is counted by one planner), largest groups first to the emptiest. */
export function splitByJob(tasks: readonly TaskToPlace[], ways: number): TaskToPlace[][] {
  const byJob = new Map<string, TaskToPlace[]>();
  for (const t of tasks) {
    let list = byJob.get(t.jobId);
    if (list === undefined) byJob.set(t.jobId, (list = []));
    list.push(t);
  }
  const groups: TaskToPlace[][] = Array.from({ length: Math.max(1, Math.min(ways, byJob.size)) }, () => []);
  for (const list of [...byJob.values()].sort((a, b) => b.length - a.length)) {
    const emptiest = groups.reduce((best, g) => (g.length < best.length ? g : best));
    emptiest.push(...list);
  }
  return groups;
}

function allocationOf(task: TaskToPlace, nodeId: string): Allocation {
  return {
    taskId: task.taskId,
    jobId: task.jobId,
    nodeId,
    resources: task.spec.resources,
    priority: task.spec.priority,
    staticPorts: task.spec.ports.flatMap((p) => (p.static === undefined ? [] : [p.static])),
  };
}

export async function placeConcurrently(workers: SchedulerWorkers, tasks: TaskToPlace[], snapshot: ClusterSnapshot, opts: SchedulerOptions = {}): Promise<ConcurrentResult> {
  const out: ConcurrentResult = { placements: [], unplaced: [], preemptions: [], conflicts: 0, attempts: 0 };
  const ledger = new CellLedger(snapshot);
  const byId = new Map(tasks.map((t) => [t.taskId, t]));
  let remaining = tasks;

  const commit = (basis: Uint32Array, result: PlacementResult): TaskToPlace[] => {
    const plan: Plan = { basis, placements: result.placements.map((p) => allocationOf(byId.get(p.taskId) as TaskToPlace, p.nodeId)), preemptions: result.preemptions };
    const verdict = judgePlan(ledger, plan);
    const placed = new Set(commitPlan(ledger, plan, verdict).map((a) => a.taskId));
    out.placements.push(...result.placements.filter((p) => placed.has(p.taskId)));
    out.preemptions.push(...result.preemptions.filter((v) => placed.has(v.forTaskId)));
    out.unplaced.push(...result.unplaced);
    out.conflicts += verdict.rejected.length;
    return verdict.rejected.map((r) => byId.get(r.taskId) as TaskToPlace);
  };

  while (remaining.length > 0) {
    out.attempts++;
    const { snapshot: current, basis } = ledger.snapshot();
    if (out.attempts >= PLACEMENT_ATTEMPTS || workers.size === 0) {
      // Planned and committed with nothing in between: no conflict is possible.
      commit(basis, placeTasks(remaining, current, opts));
      break;
    }
    const retry: TaskToPlace[] = [];
    const groups = splitByJob(remaining, workers.size);
    await Promise.all(
      groups.map((group, i) =>
        workers
          .plan(i, current, group, opts)
          // A worker that failed leaves its group to this thread, on the same snapshot and through the same commit.
          .catch(() => placeTasks(group, current, opts))
          .then((result) => retry.push(...commit(basis, result))),
      ),
    );
    remaining = retry;
  }
  return out;
}
