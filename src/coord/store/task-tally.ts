import { TERMINAL_TASK_STATES, type TaskInstance, type TaskState } from "../../common/types.js";

/** How many of a job's tasks there are in each recorded state: all that the job's status depends on. */
export interface TaskTally {
  total: number;
  /** Tasks in each recorded state (only states some task is in). */
  byState: Partial<Record<TaskState, number>>;
}

export function emptyTally(): TaskTally {
  return { total: 0, byState: {} };
}

/** Adds (sign 1) or takes away (sign -1) one task's state. */
export function countTask(tally: TaskTally, t: TaskInstance, sign: 1 | -1): void {
  tally.total += sign;
  const n = (tally.byState[t.state] ?? 0) + sign;
  if (n === 0) delete tally.byState[t.state];
  else tally.byState[t.state] = n;
}

export function tallyOf(tasks: Iterable<TaskInstance>): TaskTally {
  const tally = emptyTally();
  for (const t of tasks) countTask(tally, t, 1);
  return tally;
}

/** Tasks in a terminal state. */
export function terminalCount(tally: Readonly<TaskTally>): number {
  let n = 0;
  for (const s of TERMINAL_TASK_STATES) n += tally.byState[s] ?? 0;
  return n;
}
