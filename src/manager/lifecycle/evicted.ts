/**
 * Eviction from reclaimed capacity (docs/reclamation.md): the agent stopped a
 * reclaimed attempt so that the node's prod tasks get back what they
 * reserved. Not the task's fault: it goes back to pending, to be placed
 * anywhere (on reclaimed capacity again only if some is lent by then), with
 * no failure recorded and no restart counted against its policy.
 *
 *   running (reclaimed) ──evicted──▶ pending
 */
import type { ExitInfo, TaskInstance } from "../../common/types.js";
import { toPending, withEvent } from "./transitions.js";

export function evicted(t: TaskInstance, why: string, exit: ExitInfo, finishedAt: number | undefined, now: number): TaskInstance {
  const from = t.nodeId;
  const next = { ...toPending(t, `evicted from ${from}: ${why}`, now), exit, finishedAt: finishedAt ?? now, reclaimed: undefined };
  return withEvent(next, "evicted", `evicted from reclaimed capacity on ${from}: ${why}; back to pending (no restart counted)`, now);
}
