/**
 * The task lifecycle as pure transitions: each takes the task record, what
 * happened, and `now`, and returns the next record (records are replaced,
 * never changed). Alerts a transition calls for are returned, not raised, so
 * the caller sends them once the new record is durable.
 *
 *   pending ──dispatch──▶ dispatched ──report──▶ running
 *      ▲                     │ exit / lost / missing / drained / preempted / dispatch failed
 *      └─────────────────────┘   (or completed, failed, killed, lost: terminal)
 */
import type { ReportedTask } from "../../common/protocol.js";
import { taskIdOf, type DeviceAssignment, type ExitInfo, type Job, type TaskInstance } from "../../common/types.js";
import { decideAfterExit } from "./restart-policy.js";

/** Events kept per task record; older ones are dropped. */
export const MAX_EVENTS = 30;

export interface LifecycleAlert {
  kind: "task-failed" | "task-oom-killed" | "task-lost";
  key: string;
  job: Job;
  task: TaskInstance;
  text: string;
}

export interface Transition {
  next: TaskInstance;
  alerts: LifecycleAlert[];
}

export function withEvent(t: TaskInstance, type: string, message: string, now: number): TaskInstance {
  const events = [...t.events, { at: now, type, message }];
  return { ...t, updatedAt: now, events: events.length > MAX_EVENTS ? events.slice(events.length - MAX_EVENTS) : events };
}

/** Back to the scheduler, anywhere: the node binding, restart count and ports are dropped. */
export function toPending(t: TaskInstance, reason: string, now: number): TaskInstance {
  return { ...t, state: "pending", nodeId: undefined, stickyNode: undefined, restartsOnNode: 0, ports: undefined, ...(t.devices !== undefined ? { devices: undefined } : {}), reason, updatedAt: now };
}

export function newTask(job: Job, index: number, run: number, now: number): TaskInstance {
  return {
    id: taskIdOf(job.id, index),
    jobId: job.id,
    index,
    run,
    desired: "run",
    state: "pending",
    attempt: 0,
    restartsOnNode: 0,
    migrations: 0,
    createdAt: now,
    updatedAt: now,
    events: [{ at: now, type: "created", message: run ? `run ${run} created` : "created" }],
    ...(job.version ? { version: job.version, versionSince: now } : {}),
  };
}

/** A finished instance of an earlier cron run, replaced by the instance of run `run` (attempts and history carry on). */
export function nextRun(job: Job, previous: TaskInstance, run: number, now: number): TaskInstance {
  return withEvent({ ...newTask(job, previous.index, run, now), attempt: previous.attempt, createdAt: previous.createdAt, events: previous.events }, "created", `run ${run} created`, now);
}

/** Recorded before the agent is told: a new attempt on `nodeId`. */
/**
 * A new attempt on `nodeId`. It runs the job's current spec (`jobVersion`),
 * so an instance of an older version that restarts, e.g. after a deployment
 * failed without reverting, is recorded as the version it now runs.
 */
export function dispatched(t: TaskInstance, nodeId: string, now: number, jobVersion = 0, devices?: DeviceAssignment[]): TaskInstance {
  const version = (t.version ?? 0) === jobVersion ? {} : { version: jobVersion, versionSince: now };
  return withEvent(
    { ...t, ...version, state: "dispatched", nodeId, lastNodeId: nodeId, attempt: t.attempt + 1, dispatchedAt: now, stickyNode: undefined, reason: undefined, notBefore: undefined, exit: undefined, healthy: undefined, healthySince: undefined, members: undefined, reclaimed: undefined, ...(devices !== undefined || t.devices !== undefined ? { devices } : {}) },
    "dispatched",
    `attempt ${t.attempt + 1} on ${nodeId}${devices?.length ? ` with ${devices.map((d) => `${d.name} ${d.ids.join(",")}`).join("; ")}` : ""}`,
    now,
  );
}

/**
 * The agent reports the current attempt alive: running, new ports, or a new
 * health verdict (what deployments wait for). Undefined when nothing changed.
 */
export function reportedAlive(t: TaskInstance, rt: ReportedTask, now: number): TaskInstance | undefined {
  const health = rt.healthy !== undefined && rt.healthy !== t.healthy ? { healthy: rt.healthy, healthySince: rt.healthy ? now : undefined } : {};
  if (rt.state === "running" && t.state !== "running") {
    return withEvent({ ...t, state: "running", startedAt: rt.startedAt ?? now, ports: rt.ports ?? t.ports, reason: undefined, ...health }, "running", `running on ${t.nodeId}`, now);
  }
  if (rt.ports && JSON.stringify(rt.ports) !== JSON.stringify(t.ports ?? {})) return { ...t, ports: rt.ports, updatedAt: now, ...health };
  if (rt.healthy !== undefined && rt.healthy !== t.healthy) return withEvent({ ...t, ...health }, rt.healthy ? "healthy" : "unhealthy", rt.healthy ? "health checks pass" : "health checks fail", now);
  return undefined;
}

/**
 * The current attempt exited: killed when stopping was wanted (or the job is
 * gone), otherwise the restart policy decides: complete, restart on the same
 * node after a backoff (keeping its reservation there), migrate (avoiding
 * this node), or fail.
 */
export function exited(t: TaskInstance, job: Job | undefined, exit: ExitInfo, finishedAt: number | undefined, now: number): Transition {
  const base = { ...t, exit, finishedAt: finishedAt ?? now, updatedAt: now };
  if (t.desired === "stop") return { next: withEvent({ ...base, state: "killed", reason: "killed" }, "killed", exit.reason, now), alerts: [] };
  if (!job) return { next: withEvent({ ...base, state: "killed" }, "killed", "job gone", now), alerts: [] };
  const alerts: LifecycleAlert[] = [];
  if (exit.oomKilled) alerts.push({ kind: "task-oom-killed", key: `task-oom-killed:${t.id}:${t.attempt}`, job, task: t, text: `task ${t.id} was OOM-killed on ${t.nodeId}` });
  const d = decideAfterExit(job.spec, t, exit);
  switch (d.action) {
    case "complete":
      return { next: withEvent({ ...base, state: "completed", reason: undefined }, "completed", exit.reason, now), alerts };
    case "restart-same-node": {
      const next = { ...base, state: "pending" as const, stickyNode: t.nodeId, restartsOnNode: t.restartsOnNode + 1, notBefore: now + d.delayMs, reason: `restarting after ${exit.reason}` };
      return { next: withEvent(next, "exited", `${exit.reason}; restart ${t.restartsOnNode + 1}/${job.spec.restart.attempts} in ${d.delayMs} ms`, now), alerts };
    }
    case "migrate": {
      const avoidNodes = [...new Set([...(t.avoidNodes ?? []), ...(t.nodeId ? [t.nodeId] : [])])];
      const next = { ...base, state: "pending" as const, stickyNode: undefined, restartsOnNode: 0, migrations: t.migrations + 1, avoidNodes, notBefore: now + d.delayMs, reason: `migrating after ${exit.reason}` };
      return { next: withEvent(next, "exited", `${exit.reason}; restarts on ${t.nodeId} exhausted, migrating`, now), alerts };
    }
    case "fail":
      return failed({ ...base }, job, d.reason, now, alerts);
  }
}

function failed(t: TaskInstance, job: Job, reason: string, now: number, alerts: LifecycleAlert[] = []): Transition {
  const next = withEvent({ ...t, state: "failed", finishedAt: t.finishedAt ?? now, reason }, "failed", reason, now);
  return { next, alerts: [...alerts, { kind: "task-failed", key: `task-failed:${t.id}:${t.attempt}`, job, task: next, text: `task ${t.id} failed: ${reason}` }] };
}

/**
 * The scheduler found that the task failed on every ready node. A service
 * starts over on any node (with the backoff of a first restart); anything
 * else fails, with the nodes it tried.
 */
export function failedEverywhere(t: TaskInstance, job: Job, now: number): Transition {
  if (job.spec.type === "service") {
    return { next: withEvent({ ...t, avoidNodes: undefined, notBefore: now + job.spec.restart.delayMs }, "retry", "failed on every usable node; trying all nodes again", now), alerts: [] };
  }
  return failed({ ...t, finishedAt: now }, job, `failed on every usable node (${(t.avoidNodes ?? []).join(", ")}); last: ${t.exit?.reason ?? "unknown"}`, now);
}

/** The task's node was lost (or is gone): rescheduled, or lost for good when it was being stopped. */
export function nodeLost(t: TaskInstance, job: Job | undefined, nodeId: string, now: number, why = "lost"): Transition {
  if (t.desired === "stop") return { next: withEvent({ ...t, state: "lost", finishedAt: now, reason: `node ${nodeId} ${why}` }, "lost", `node ${nodeId} ${why}`, now), alerts: [] };
  const next = withEvent(toPending(t, `node ${nodeId} ${why}`, now), "lost", `node ${nodeId} ${why}; rescheduling`, now);
  return { next, alerts: job ? [{ kind: "task-lost", key: `task-lost:${t.id}:${t.attempt}`, job, task: t, text: `task ${t.id} lost with node ${nodeId}; rescheduling` }] : [] };
}

/** The node is draining: the task is stopped there and placed elsewhere. */
export function drained(t: TaskInstance, now: number): TaskInstance {
  return withEvent(toPending(t, `migrating: node ${t.nodeId} draining`, now), "migrate", `node ${t.nodeId} draining`, now);
}

export function preempted(t: TaskInstance, by: string, nodeId: string, now: number): TaskInstance {
  return withEvent(toPending(t, `preempted by ${by}`, now), "preempted", `preempted by ${by} on ${nodeId}`, now);
}

/** The job was killed: a pending task is killed at once, a live one is asked to stop. Undefined when nothing changes. */
export function jobKilled(t: TaskInstance, now: number): TaskInstance | undefined {
  if (t.desired === "stop") return undefined;
  if (t.state === "pending") return withEvent({ ...t, desired: "stop", state: "killed", finishedAt: now, reason: "job killed" }, "killed", "job killed before it started", now);
  if (t.state === "dispatched" || t.state === "running") return withEvent({ ...t, desired: "stop" }, "kill", "job killed: stopping", now);
  return undefined;
}

/**
 * The agent does not report a task it was given (after the missing-task
 * grace). A report can be older than the order: one built before the order
 * arrived may be reconciled seconds later by a busy primary, so absence from
 * it proves nothing. The same attempt is therefore sent again (`resend`):
 * orders are idempotent by (task, attempt), so an agent that has it answers
 * "not created" and one that has not starts it now; either way the attempt
 * runs once. Only a task being stopped that is gone from its node ends here
 * (killed): rescheduling it would leave a record nothing ever ends.
 */
export function missingFromNode(t: TaskInstance, nodeId: string, now: number): { next: TaskInstance; resend: boolean } {
  if (t.desired === "stop") return { next: withEvent({ ...t, state: "killed", finishedAt: now, reason: `stopped; missing from node ${nodeId}` }, "killed", `missing from node ${nodeId} while stopping`, now), resend: false };
  return { next: withEvent({ ...t, dispatchedAt: now }, "resent", `not in node ${nodeId}'s report; attempt ${t.attempt} sent again`, now), resend: true };
}

/** The agent could not be told to start the task: retried elsewhere after a second. */
export function dispatchFailed(t: TaskInstance, nodeId: string, error: string, now: number): TaskInstance {
  return withEvent({ ...toPending(t, `dispatch to ${nodeId} failed: ${error}`, now), notBefore: now + 1000 }, "dispatch-failed", `dispatch to ${nodeId} failed: ${error}; retrying elsewhere`, now);
}
