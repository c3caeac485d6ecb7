/**
 * Reconciling one agent's full report against the store, pure: level-
 * triggered, so whatever the agent runs that the cell does not want is
 * stopped, every reported change of a current attempt is recorded, and a
 * dispatched task the agent does not report (after the grace) is sent to it
 * again as the same attempt (lifecycle/transitions.ts, `missingFromNode`).
 */
import type { AgentReport } from "../../common/protocol.js";
import { parseTaskId, type ExitInfo, type Job, type TaskInstance } from "../../common/types.js";
import { withReportedMembers } from "../lifecycle/members.js";
import { evicted } from "../lifecycle/evicted.js";
import { exited, missingFromNode, reportedAlive, type LifecycleAlert } from "../lifecycle/transitions.js";

export interface ReconcileView {
  readonly jobs: ReadonlyMap<string, Job>;
  task(jobId: string, index: number): TaskInstance | undefined;
  tasksOnNode(nodeId: string): Iterable<TaskInstance>;
}

export interface ReconcileDecision {
  /** Changes to record durably before the report is answered: exits, and tasks gone missing. */
  updates: TaskInstance[];
  /**
   * What the agent observes of a live attempt (running, ports, health,
   * members). It says so again in every report, so these need not be durable
   * before the answer: a primary that dies first loses nothing the next
   * report does not restore.
   */
  observations: TaskInstance[];
  stops: { task: Pick<TaskInstance, "id" | "attempt" | "nodeId">; why: string }[];
  /** Tasks the agent does not report: their order is sent again, same attempt, once the record (new dispatch time) is durable. */
  resends: TaskInstance[];
  alerts: LifecycleAlert[];
}

export interface ReconcileOptions {
  /** False during the takeover grace: agents may not have reported yet. */
  presumeMissing: boolean;
  missingGraceMs: number;
}

export function reconcileReport(report: AgentReport, view: ReconcileView, now: number, opts: ReconcileOptions): ReconcileDecision {
  const nodeId = report.agentId;
  const decision: ReconcileDecision = { updates: [], observations: [], stops: [], resends: [], alerts: [] };
  const seen = new Set<string>();
  for (const rt of report.tasks) {
    const ref = parseTaskId(rt.taskId);
    const t = ref ? view.task(ref.jobId, ref.index) : undefined;
    // An attempt of an earlier task of the same id (its job was retired and submitted again) is not this one.
    const otherIncarnation = rt.incarnation !== undefined && t !== undefined && rt.incarnation !== t.createdAt;
    if (!t || otherIncarnation || t.nodeId !== nodeId || t.attempt !== rt.attempt || (t.state !== "dispatched" && t.state !== "running")) {
      if (rt.state !== "exited") decision.stops.push({ task: { id: rt.taskId, attempt: rt.attempt, nodeId }, why: "not assigned to this node" });
      continue;
    }
    seen.add(t.id);
    if (rt.state === "exited") {
      const exit: ExitInfo = rt.exit ?? { exitCode: null, signal: null, oomKilled: false, reason: rt.error ?? "exited" };
      if (rt.evicted !== undefined && t.desired === "run") {
        decision.updates.push(evicted(t, rt.evicted, exit, rt.finishedAt, now));
        continue;
      }
      const { next, alerts } = exited(t, view.jobs.get(t.jobId), exit, rt.finishedAt, now);
      decision.updates.push(withReportedMembers(next, rt.members, now) ?? next);
      decision.alerts.push(...alerts);
    } else if (t.desired === "stop") {
      decision.stops.push({ task: t, why: "stop" });
    } else {
      const alive = reportedAlive(t, rt, now);
      const next = withReportedMembers(alive ?? t, rt.members, now) ?? alive;
      if (next) decision.observations.push(next);
    }
  }
  if (opts.presumeMissing) {
    for (const t of view.tasksOnNode(nodeId)) {
      if (t.nodeId !== nodeId || seen.has(t.id)) continue;
      if (t.state !== "dispatched" && t.state !== "running") continue;
      if (t.dispatchedAt !== undefined && now - t.dispatchedAt < opts.missingGraceMs) continue;
      const missing = missingFromNode(t, nodeId, now);
      (missing.resend ? decision.resends : decision.updates).push(missing.next);
    }
  }
  return decision;
}
