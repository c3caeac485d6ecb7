import type { TaskInstance } from "../common/types.js";

/** What one task write means for the counters: the lifecycle's own figures, compared before and after. */
export interface TaskTransition {
  /** Restarted in place (its restart count on the node went up). */
  restart: boolean;
  /** Left its node to be placed on another: restarts there exhausted, the node drained or lost. */
  migration: boolean;
  /** Stopped to make room for a higher-priority task. */
  preemption: boolean;
  /** Milliseconds from the record's creation to its first attempt running; undefined for any other write. */
  submitToRunningMs?: number;
}

/** Event types the lifecycle (lifecycle/transitions.ts) appends when a task is moved off its node. */
const MOVED_OFF_NODE = new Set(["migrate", "lost"]);

/** Pure: the transition from `prev` (undefined for a new record) to `next`. */
export function taskTransition(prev: TaskInstance | undefined, next: TaskInstance): TaskTransition {
  // Each lifecycle step appends one event; the list is capped, so the new one is found by content, not by index.
  const last = next.events.at(-1);
  const before = prev?.events.at(-1);
  const added = prev && last && !(before && before.at === last.at && before.type === last.type && before.message === last.message) ? [last] : [];
  const rescheduled = next.state === "pending" && prev !== undefined && prev.state !== "pending";
  const firstRun = next.state === "running" && prev?.state !== "running" && next.attempt === 1;
  return {
    restart: prev !== undefined && next.restartsOnNode > prev.restartsOnNode,
    migration: prev !== undefined && (next.migrations > prev.migrations || (rescheduled && added.some((e) => MOVED_OFF_NODE.has(e.type)))),
    preemption: added.some((e) => e.type === "preempted"),
    ...(firstRun ? { submitToRunningMs: Math.max(0, next.updatedAt - next.createdAt) } : {}),
  };
}
