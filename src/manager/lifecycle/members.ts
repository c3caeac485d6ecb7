/**
 * An alloc's members on the task record (docs/allocs.md), pure: the agent
 * reports each member's state and exit with the alloc instance; a change is
 * recorded, and a member's exit becomes an event on the instance's timeline
 * (so an OOM kill is told against the member it hit).
 */
import type { MemberStatus, TaskInstance } from "../../common/types.js";
import { withEvent } from "./transitions.js";

/** `t` with the reported members; undefined when nothing changed (or the report has none). */
export function withReportedMembers(t: TaskInstance, reported: MemberStatus[] | undefined, now: number): TaskInstance | undefined {
  if (!reported || JSON.stringify(reported) === JSON.stringify(t.members ?? [])) return undefined;
  let next: TaskInstance = { ...t, members: reported, updatedAt: now };
  const before = new Map((t.members ?? []).map((m) => [m.name, m]));
  for (const m of reported) {
    if (m.state !== "exited" || !m.exit || before.get(m.name)?.state === "exited") continue;
    next = withEvent(next, m.exit.oomKilled ? "member-oom-killed" : "member-exited", `task ${m.name}: ${m.exit.reason}`, now);
  }
  return next;
}
