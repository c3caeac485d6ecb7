/**
 * The deployment state machine, pure: from a deployment record, the job's
 * instances (version, state, health and since-times), the update policy and
 * `now`, what to do next. Level-triggered: the same input gives the same
 * decision, so a primary that takes over mid-rollout carries on from the
 * records alone, with nothing started twice or skipped.
 *
 *   running ──canaries healthy, no autoPromote──▶ awaiting-promotion ──promote──▶ running
 *   running ──every instance new and healthy──▶ successful
 *   running ──an instance unhealthy past healthyDeadline / no progress for progressDeadline──▶ failed
 *                                                                  (autoRevert: reverted, and a revert)
 *   running ⇄ paused (by hand) · any live state ──fail (by hand)──▶ failed
 *
 * Instances are slots (task indexes). A new instance takes a free slot (no
 * record, or a finished one); an old one is stopped, drained first (the
 * primary does that). With `maxSurge: 0` an old instance is stopped before
 * its replacement starts; above 0, new ones start first and old ones stop as
 * new ones turn healthy. At most `maxParallel` instances are in progress at
 * once (new and not yet healthy for `minHealthyTime`, or old and stopping
 * while nothing surges).
 */
import { TERMINAL_TASK_STATES, type Deployment, type TaskInstance, type UpdatePolicy } from "../../common/types.js";

export type DeploymentAction =
  /** Create (or replace a finished record with) a new-version instance at this slot. */
  | { kind: "start"; index: number; canary: boolean }
  /** The instance's version may become the new one without a restart. */
  | { kind: "adopt"; index: number }
  /** Unpublish, drain and stop the instance at this slot. */
  | { kind: "stop"; index: number; why: string }
  /** Submit `toVersion` again as a new version (automatic revert). */
  | { kind: "revert"; toVersion: number };

export interface DeploymentInput {
  deployment: Deployment;
  policy: UpdatePolicy;
  /** Instances the new version wants. */
  instances: number;
  /** The new version has health checks: healthy means they pass; otherwise running is healthy. */
  hasChecks: boolean;
  /** Every task record of the job. */
  tasks: readonly TaskInstance[];
  /** Whether an instance of this (older) version can be updated in place to the new one. */
  inPlace: (version: number) => boolean;
  now: number;
}

export interface DeploymentStep {
  actions: DeploymentAction[];
  /** The record to store; the input object itself when nothing changed. */
  deployment: Deployment;
}

export const LIVE_DEPLOYMENT_STATUSES: ReadonlySet<Deployment["status"]> = new Set(["running", "awaiting-promotion", "paused"]);

export function isActive(d: Deployment | undefined): boolean {
  return d !== undefined && LIVE_DEPLOYMENT_STATUSES.has(d.status);
}

export function versionOf(t: Pick<TaskInstance, "version">): number {
  return t.version ?? 0;
}

/** Healthy for the deployment: running, checks passing (if any), for at least `minHealthyTime`. */
export function isHealthyFor(t: TaskInstance, hasChecks: boolean, minHealthyTimeMs: number, now: number): boolean {
  if (t.state !== "running" || t.desired !== "run") return false;
  const since = hasChecks ? (t.healthy === true ? t.healthySince : undefined) : t.startedAt;
  return since !== undefined && now - since >= minHealthyTimeMs;
}

export function stepDeployment(input: DeploymentInput): DeploymentStep {
  const { policy, now } = input;
  let d = input.deployment;
  const actions: DeploymentAction[] = [];
  if (!isActive(d)) return { actions, deployment: d };
  const target = d.version;
  const N = input.instances;
  const live = input.tasks.filter((t) => t.desired === "run" && !TERMINAL_TASK_STATES.has(t.state));

  // Instances whose version differs only in fields a running process does not see join the new version at once.
  const adopted = new Set<number>();
  for (const t of live) {
    if (versionOf(t) !== target && input.inPlace(versionOf(t))) {
      actions.push({ kind: "adopt", index: t.index });
      adopted.add(t.index);
    }
  }
  // A restart replaces the instances that took the version before it asked.
  const restarted = (t: TaskInstance) => d.restartAt !== undefined && (t.versionSince ?? t.createdAt) < d.restartAt;
  const isNew = (t: TaskInstance) => (versionOf(t) === target && !restarted(t)) || adopted.has(t.index);
  const newLive = live.filter(isNew);
  const oldLive = live.filter((t) => !isNew(t));
  const oldStopping = input.tasks.filter((t) => isStopping(t) && (versionOf(t) !== target || restarted(t)));
  const healthy = (t: TaskInstance) => isHealthyFor(t, input.hasChecks, policy.minHealthyTimeMs, now);
  const newHealthy = newLive.filter(healthy);

  if (d.status === "paused") return { actions, deployment: d };

  // Failure: a new instance failed for good or is not healthy by its deadline, or nothing progressed for too long.
  const failure = failureOf(input, newLive, healthy);
  if (failure) {
    const revert = policy.autoRevert && d.stableVersion !== undefined && d.stableVersion !== target;
    if (revert) actions.push({ kind: "revert", toVersion: d.stableVersion! });
    const description = revert ? `${failure}; reverting to version ${d.stableVersion}` : failure;
    return { actions, deployment: { ...d, status: revert ? "reverted" : "failed", description, finishedAt: now } };
  }

  if (newHealthy.length !== d.healthy) {
    d = newHealthy.length > d.healthy ? { ...d, healthy: newHealthy.length, progressAt: now } : { ...d, healthy: newHealthy.length };
  }

  const slots = new FreeSlots(input.tasks);
  const canaries = Math.min(policy.canary, N);
  if (canaries > 0 && !d.promoted) {
    const placed = newLive.filter((t) => t.canary);
    for (let k = placed.length; k < canaries; k++) actions.push({ kind: "start", index: slots.take(), canary: true });
    const ready = placed.filter(healthy).length;
    if (ready < canaries) return { actions, deployment: described(d, "running", `${ready}/${canaries} canaries healthy`) };
    if (!policy.autoPromote) return { actions, deployment: described(d, "awaiting-promotion", `${canaries} canaries healthy; waiting for promote`) };
    d = { ...d, promoted: true, progressAt: now };
  }

  // Old instances that are not running serve nobody: replaced at once.
  const stops = new Set<number>();
  const stop = (t: TaskInstance, why: string) => {
    stops.add(t.index);
    actions.push({ kind: "stop", index: t.index, why });
  };
  for (const t of oldLive) if (t.state === "pending") stop(t, `replaced by version ${target}`);
  // Scaled down: the surplus new instances go, unhealthy and highest first.
  const surplusNew = [...newLive].sort((a, b) => Number(healthy(a)) - Number(healthy(b)) || b.index - a.index).slice(0, Math.max(0, newLive.length - N));
  for (const t of surplusNew) stop(t, `scaled down to ${N}`);
  // More serving than wanted (canaries promoted, surge instances healthy): the old ones go.
  const remainingOld = () => oldLive.filter((t) => !stops.has(t.index));
  const excess = newHealthy.length - surplusNew.filter(healthy).length + remainingOld().length - N;
  for (const t of remainingOld().sort((a, b) => b.index - a.index).slice(0, Math.max(0, excess))) stop(t, `replaced by version ${target}`);

  const newCount = newLive.length - surplusNew.length;
  const inProgress = newLive.filter((t) => !healthy(t) && !stops.has(t.index)).length + (policy.maxSurge === 0 ? oldStopping.length + stops.size - surplusNew.length : 0);
  const staggered = d.lastBatchAt !== undefined && now - d.lastBatchAt < policy.staggerMs;
  let room = staggered ? 0 : Math.max(0, policy.maxParallel - inProgress);
  let batch = false;
  const startsWanted = Math.min(room, N + policy.maxSurge - (newCount + remainingOld().length), N - newCount);
  for (let k = 0; k < startsWanted; k++) actions.push({ kind: "start", index: slots.take(), canary: false });
  room -= Math.max(0, startsWanted);
  batch ||= startsWanted > 0;
  if (policy.maxSurge === 0) {
    for (const t of remainingOld().sort((a, b) => b.index - a.index).slice(0, room)) {
      stop(t, `replaced by version ${target}`);
      batch = true;
    }
  }
  if (batch) d = { ...d, lastBatchAt: now };

  // Done once nothing is left stopping either (old instances, or surplus ones of a scale-down).
  const stillStopping = input.tasks.some(isStopping);
  const done = oldLive.length === 0 && !stillStopping && newCount === N && newHealthy.length >= N && actions.every((a) => a.kind === "adopt");
  if (done) return { actions, deployment: { ...d, status: "successful", description: `all ${N} instances on version ${target} and healthy`, finishedAt: now } };
  const left = remainingOld().length + oldStopping.length;
  return { actions, deployment: described(d, "running", `${newHealthy.length}/${N} healthy on version ${target}; ${left} old left`) };
}

/** Asked to stop and still on a node (a record with nothing left to stop is not waited for). */
function isStopping(t: TaskInstance): boolean {
  return t.desired === "stop" && (t.state === "dispatched" || t.state === "running");
}

function failureOf(input: DeploymentInput, newLive: TaskInstance[], healthy: (t: TaskInstance) => boolean): string | undefined {
  const { deployment: d, policy, now } = input;
  const target = d.version;
  const failed = input.tasks.find((t) => versionOf(t) === target && t.desired === "run" && t.state === "failed");
  if (failed) return `instance ${failed.id} failed: ${failed.reason ?? "failed"}`;
  for (const t of newLive) {
    const since = t.versionSince ?? t.createdAt;
    if (!healthy(t) && now - since > policy.healthyDeadlineMs) return `instance ${t.id} not healthy within ${policy.healthyDeadlineMs} ms`;
  }
  if (d.status === "running" && now - d.progressAt > policy.progressDeadlineMs) return `no instance turned healthy for ${policy.progressDeadlineMs} ms`;
  return undefined;
}

function described(d: Deployment, status: Deployment["status"], description: string): Deployment {
  return d.status === status && d.description === description ? d : { ...d, status, description };
}

/** Slots a new instance may take: indexes with no record, or a finished one; lowest first. */
class FreeSlots {
  private readonly busy: Set<number>;
  private next = 0;

  constructor(tasks: readonly TaskInstance[]) {
    this.busy = new Set(tasks.filter((t) => !TERMINAL_TASK_STATES.has(t.state)).map((t) => t.index));
  }

  take(): number {
    while (this.busy.has(this.next)) this.next++;
    this.busy.add(this.next);
    return this.next;
  }
}
