import type { ExitInfo, JobSpec, TaskInstance } from "../../common/types.js";

/**
 * What happens to a task after it exits: pure, so it is tested as a table.
 *
 * - batch, exit 0 → completed.
 * - otherwise (batch failure, or any exit of a service task) → restart on the
 *   same node while `restartsOnNode < restart.attempts`, after
 *   min(delay × backoff^n, maxDelay);
 * - then migrate: reschedule elsewhere (the node is avoided), at most
 *   MAX_MIGRATIONS times for a failing task, after which it is failed.
 * A service that exits 0 is restarted too (services keep running), but a clean
 * exit does not count towards migration.
 */
export const MAX_MIGRATIONS = 2;

export type ExitDecision =
  | { action: "complete" }
  | { action: "restart-same-node"; delayMs: number }
  | { action: "migrate"; delayMs: number }
  | { action: "fail"; reason: string };

export function restartDelay(spec: JobSpec, restartsSoFar: number): number {
  const r = spec.restart;
  return Math.min(r.delayMs * Math.pow(r.backoff, restartsSoFar), r.maxDelayMs);
}

export function decideAfterExit(spec: JobSpec, task: Pick<TaskInstance, "restartsOnNode" | "migrations">, exit: ExitInfo): ExitDecision {
  const success = exit.exitCode === 0 && !exit.oomKilled && exit.signal === null;
  if (spec.type === "batch" && success) return { action: "complete" };
  if (task.restartsOnNode < spec.restart.attempts) {
    return { action: "restart-same-node", delayMs: restartDelay(spec, task.restartsOnNode) };
  }
  if (task.migrations < MAX_MIGRATIONS) return { action: "migrate", delayMs: restartDelay(spec, 0) };
  return { action: "fail", reason: `${exit.reason}; ${spec.restart.attempts} restarts and ${MAX_MIGRATIONS} migrations exhausted` };
}
