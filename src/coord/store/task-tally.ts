import { TERMINAL_TASK_STATES, type TaskInstance, type TaskState } from "../../common/types.js";

/** How many of a job's tasks are in each kind of state: all that the job's status depends on. */
export interface TaskTally {
  total: number;
  /** In a terminal state. */
  terminal: number;
  /** Dispatched or running. */
  active: number;
  completed: number;
  failed: number;
  /** Tasks in each recorded state (only states some task is in). */
  byState: Partial<Record<TaskState, number>>;
}

export function emptyTally(): TaskTally {
  return { total: 0, terminal: 0, active: 0, completed: 0, failed: 0, byState: {} };
}

/** Adds (sign 1) or takes away (sign -1) one task's state. */
export function countTask(tally: TaskTally, t: TaskInstance, sign: 1 | -1): void {
  tally.total += sign;
  if (TERMINAL_TASK_STATES.has(t.state)) tally.terminal += sign;
  if (t.state === "running" || t.state === "dispatched") tally.active += sign;
  else if (t.state === "completed") tally.completed += sign;
  else if (t.state === "failed") tally.failed += sign;
  const n = (tally.byState[t.state] ?? 0) + sign;
  if (n === 0) delete tally.byState[t.state];
  else tally.byState[t.state] = n;
}

export function tallyOf(tasks: Iterable<TaskInstance>): TaskTally {
  const tally = emptyTally();
  for (const t of tasks) countTask(tally, t, 1);
  return tally;
}
