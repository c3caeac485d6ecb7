import { TERMINAL_TASK_STATES, type TaskInstance } from "../../common/types.js";

/** How many of a job's tasks are in each kind of state: all that the job's status depends on. */
export interface TaskTally {
  total: number;
  /** In a terminal state. */
  terminal: number;
  /** Dispatched or running. */
  active: number;
  completed: number;
  failed: number;
}

export function emptyTally(): TaskTally {
  return { total: 0, terminal: 0, active: 0, completed: 0, failed: 0 };
}

/** Adds (sign 1) or takes away (sign -1) one task's state. */
export function countTask(tally: TaskTally, t: TaskInstance, sign: 1 | -1): void {
  tally.total += sign;
  if (TERMINAL_TASK_STATES.has(t.state)) tally.terminal += sign;
  if (t.state === "running" || t.state === "dispatched") tally.active += sign;
  else if (t.state === "completed") tally.completed += sign;
  else if (t.state === "failed") tally.failed += sign;
}

export function tallyOf(tasks: Iterable<TaskInstance>): TaskTally {
  const tally = emptyTally();
  for (const t of tasks) countTask(tally, t, 1);
  return tally;
}
