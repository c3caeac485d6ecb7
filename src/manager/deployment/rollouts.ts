import { randomUUID } from "node:crypto";
import { ConflictError, NotFoundError, ValidationError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { TASKFILE_DEFAULTS } from "../../common/taskfile/index.js";
import type { Deployment, Job, JobSpec, TaskInstance, UpdatePolicy } from "../../common/types.js";
import type { StateStore } from "../../coord/state-store.js";
import { newTask, withEvent } from "../lifecycle/transitions.js";
import type { TaskSender } from "../primary/sender.js";
import type { TaskWriter } from "../primary/writer.js";
import { diffSpecs, liveInstances, planInstances, updatableInPlace, type InstancePlan, type SpecDiff } from "../versions/diff.js";
import type { JobVersion, VersionStore } from "../versions/store.js";
import { isActive, stepDeployment, versionOf, type DeploymentAction } from "./machine.js";

export interface RolloutDeps {
  store: Pick<StateStore, "jobs" | "tasksOf" | "task" | "updateJob">;
  writer: TaskWriter;
  sender: TaskSender;
  versions: VersionStore;
  log: Logger;
  now: () => number;
  isFenced: () => boolean;
  /**
   * Refuses a version whose reservation the namespace's quota cannot hold (in
   * place of the job's current one); otherwise reserves it until the returned
   * release is called, once the version is stored or has failed.
   */
  admit: (job: Job, spec: JobSpec) => Promise<() => void>;
}

/** What a submission did. */
export interface SubmitOutcome {
  job: Job;
  version: number;
  change: "created" | "new-version" | "unchanged";
  diff?: SpecDiff;
}

export interface VersionPlan {
  fromVersion: number;
  diff: SpecDiff;
  instances: InstancePlan;
}

export type DeploymentControl = "promote" | "pause" | "resume" | "fail";

export function updatePolicyOf(spec: JobSpec): UpdatePolicy {
  return spec.update ?? TASKFILE_DEFAULTS.update;
}

/** A service with checks is healthy when they pass; without, once running. */
export function hasHealthChecks(spec: JobSpec): boolean {
  return spec.service !== undefined && spec.ports.some((p) => p.check !== undefined);
}

/** How long an instance of the job stays up after leaving naming before it is stopped. */
export function drainDelayOf(job: Job | undefined): number {
  if (!job || job.spec.type !== "service" || !job.spec.service) return 0;
  return updatePolicyOf(job.spec).drainDelayMs;
}

/** The version an automatic revert goes back to: the running version when it rolled out fine (or never rolled out). */
function stableVersionOf(job: Job): number | undefined {
  const d = job.deployment;
  if (!d) return job.version ?? 0;
  return d.status === "successful" ? d.version : d.stableVersion;
}

/**
 * Versions and deployments on the primary: a submission for a live service
 * becomes a new version with a deployment, and the tick steps every live
 * deployment (machine.ts) and carries out its actions. Everything a step
 * decides is written before it is acted on, and the step reads nothing but
 * records, so a new primary continues a rollout where the last one left it.
 */
export class Rollouts {
  constructor(private readonly d: RolloutDeps) {}

  // ------------------------------------------------------------- versions

  /**
   * The first version of a new job (a reused name starts its list over), sent
   * right behind the job's own create (`created`): a session's requests apply
   * in order, so both take one round trip. Resolves once both are durable and
   * rejects as `created` does. A list left by a job whose create failed counts
   * for nothing: the next job of that name replaces it.
   */
  async recordFirst(job: Job, created: Promise<void>): Promise<void> {
    const first: JobVersion = { version: 0, submittedAt: job.submittedAt, source: job.source, spec: job.spec, ...(job.packageDigest ? { packageDigest: job.packageDigest } : {}) };
    const sent = this.d.versions.createFirst(job.id, first).catch(() => false);
    await created;
    if (!(await sent)) await this.d.versions.add(job.id, first, true);
  }

  /** What submitting `spec` for the live `job` would change. */
  plan(job: Job, spec: JobSpec, packageDigest: string | undefined): VersionPlan {
    const diff = diffSpecs({ spec: job.spec, packageDigest: job.packageDigest }, { spec, packageDigest });
    return { fromVersion: job.version ?? 0, diff, instances: planInstances(job.id, this.d.store.tasksOf(job.id), diff, spec.instances) };
  }

  /**
   * A new version of a live service, rolled out by a deployment; the same
   * spec again changes nothing. Batch jobs are refused: their started
   * instances cannot be replaced without losing their work.
   */
  async submitVersion(job: Job, spec: JobSpec, source: string, packageDigest: string | undefined, extra: { revertOf?: number } = {}): Promise<SubmitOutcome> {
    if (job.desired === "stop") throw new ConflictError(`job ${job.id} is being killed; submit again once it is dead`, { jobId: job.id });
    if (job.spec.type !== "service" || job.spec.schedule || spec.type !== "service") {
      throw new ConflictError(`job ${job.id} is a live batch job: a new version applies to services only (started batch instances cannot be replaced without losing their work); kill it or wait for it to finish, then submit again`, { jobId: job.id });
    }
    const diff = diffSpecs({ spec: job.spec, packageDigest: job.packageDigest }, { spec, packageDigest });
    if (diff.identical) return { job, version: job.version ?? 0, change: "unchanged", diff };
    const release = await this.d.admit(job, spec);
    try {
      return await this.storeVersion(job, spec, source, packageDigest, diff, extra);
    } finally {
      release();
    }
  }

  private async storeVersion(job: Job, spec: JobSpec, source: string, packageDigest: string | undefined, diff: SpecDiff, extra: { revertOf?: number }): Promise<SubmitOutcome> {
    const now = this.d.now();
    const known = await this.d.versions.list(job.id);
    const current = job.version ?? 0;
    // A job submitted before versions were kept: its running spec becomes the first entry.
    if (!known.some((v) => v.version === current)) await this.d.versions.add(job.id, { version: current, submittedAt: job.submittedAt, source: job.source, spec: job.spec, ...(job.packageDigest ? { packageDigest: job.packageDigest } : {}) });
    const version = Math.max(current, ...known.map((v) => v.version)) + 1;
    const entry: JobVersion = { version, submittedAt: now, source, spec, ...(packageDigest ? { packageDigest } : {}), ...(extra.revertOf !== undefined ? { revertOf: extra.revertOf } : {}) };
    await this.d.versions.add(job.id, entry);
    // Canaries try out a change that restarts instances; one applied in place has nothing to try out.
    const deployment = this.newDeployment(job, version, updatePolicyOf(spec), now, diff.replaces ? {} : { promoted: true });
    const { packageDigest: _previousDigest, ...rest } = job;
    const next: Job = { ...rest, spec, source, version, deployment, updatedAt: now, ...(packageDigest ? { packageDigest } : {}) };
    await this.d.store.updateJob(next);
    this.d.log.info({ job: job.id, version, fields: diff.fields.map((f) => f.field), replaces: diff.replaces }, "new job version; deployment started");
    return { job: next, version, change: "new-version", diff };
  }

  private newDeployment(job: Job, version: number, policy: UpdatePolicy, now: number, extra: Partial<Deployment> = {}): Deployment {
    const stable = stableVersionOf(job);
    return {
      id: randomUUID().slice(0, 8),
      version,
      status: "running",
      description: "started",
      startedAt: now,
      progressAt: now,
      healthy: 0,
      promoted: policy.canary === 0,
      ...(stable !== undefined ? { stableVersion: stable } : {}),
      ...extra,
    };
  }

  async revert(jobId: string, version: number): Promise<SubmitOutcome> {
    const job = this.liveJob(jobId);
    const v = await this.d.versions.get(jobId, version);
    if (!v) throw new NotFoundError("version", `${jobId}@${version}`);
    return this.submitVersion(job, v.spec, v.source, v.packageDigest, { revertOf: version });
  }

  /** A new version with another instance count (applied in place: no instance restarts). */
  async scale(jobId: string, instances: number): Promise<SubmitOutcome> {
    if (!Number.isInteger(instances) || instances < 0 || instances > 10_000) throw new ValidationError([{ field: "instances", message: `must be an integer from 0 to 10000, got ${instances}` }]);
    const job = this.liveJob(jobId);
    return this.submitVersion(job, { ...job.spec, instances }, job.source, job.packageDigest);
  }

  /** Replaces every instance of the running version, by the update policy or all at once. */
  async restart(jobId: string, allAtOnce: boolean): Promise<Job> {
    const job = this.liveJob(jobId);
    if (job.spec.type !== "service") throw new ConflictError(`job ${jobId} is a batch job: only services restart in place`, { jobId });
    const now = this.d.now();
    const deployment = this.newDeployment(job, job.version ?? 0, updatePolicyOf(job.spec), now, { restartAt: now, promoted: true, ...(allAtOnce ? { allAtOnce: true } : {}) });
    const next: Job = { ...job, deployment: { ...deployment, stableVersion: job.version ?? 0 }, updatedAt: now };
    await this.d.store.updateJob(next);
    return next;
  }

  async control(jobId: string, op: DeploymentControl): Promise<Job> {
    const job = this.liveJob(jobId);
    const d = job.deployment;
    if (!d || !isActive(d)) throw new ConflictError(`job ${jobId} has no deployment under way${d ? ` (the last one is ${d.status})` : ""}`, { jobId });
    const now = this.d.now();
    let next: Deployment;
    switch (op) {
      case "promote":
        if (d.promoted) throw new ConflictError(`deployment of ${jobId} version ${d.version} has no canaries waiting for promotion`, { jobId });
        next = { ...d, promoted: true, status: "running", description: "promoted", progressAt: now };
        break;
      case "pause":
        if (d.status === "paused") return job;
        next = { ...d, status: "paused", description: `paused (was ${d.status})` };
        break;
      case "resume":
        if (d.status !== "paused") throw new ConflictError(`deployment of ${jobId} is ${d.status}, not paused`, { jobId });
        next = { ...d, status: "running", description: "resumed", progressAt: now };
        break;
      case "fail": {
        const policy = updatePolicyOf(job.spec);
        const revert = policy.autoRevert && d.stableVersion !== undefined && d.stableVersion !== d.version;
        next = { ...d, status: revert ? "reverted" : "failed", description: revert ? `failed by hand; reverting to version ${d.stableVersion}` : "failed by hand", finishedAt: now };
        await this.d.versions.recordOutcome(jobId, d.version, { status: next.status, description: next.description, finishedAt: now });
        await this.d.store.updateJob({ ...job, deployment: next, updatedAt: now });
        if (revert) await this.revert(jobId, d.stableVersion!);
        return this.d.store.jobs.get(jobId)!;
      }
    }
    const updated: Job = { ...job, deployment: next, updatedAt: now };
    await this.d.store.updateJob(updated);
    return updated;
  }

  private liveJob(jobId: string): Job {
    const job = this.d.store.jobs.get(jobId);
    if (!job) throw new NotFoundError("job", jobId);
    if (job.desired !== "run") throw new ConflictError(`job ${jobId} is not running (killed)`, { jobId });
    return job;
  }

  // ------------------------------------------------------------- the tick phase

  /** Steps every live deployment; one job's failure does not hold up the others (the first is rethrown). */
  async run(): Promise<void> {
    let first: unknown;
    for (const job of [...this.d.store.jobs.values()]) {
      if (this.d.isFenced()) return;
      if (job.desired !== "run" || !isActive(job.deployment)) continue;
      try {
        await this.stepJob(job);
      } catch (e) {
        first ??= e;
        this.d.log.warn({ job: job.id, err: e }, "deployment step failed");
      }
    }
    if (first) throw first;
  }

  private async stepJob(job: Job): Promise<void> {
    const d = job.deployment!;
    const now = this.d.now();
    const tasks = this.d.store.tasksOf(job.id);
    const target = { spec: job.spec, packageDigest: job.packageDigest };
    const inPlace = new Map<number, boolean>();
    for (const t of liveInstances(tasks)) {
      const v = versionOf(t);
      if (v === d.version || inPlace.has(v)) continue;
      const old = await this.d.versions.get(job.id, v);
      inPlace.set(v, old !== undefined && updatableInPlace({ spec: old.spec, packageDigest: old.packageDigest }, target));
    }
    const policy = updatePolicyOf(job.spec);
    const step = stepDeployment({
      deployment: d,
      policy: d.allAtOnce ? { ...policy, maxParallel: Math.max(1, job.spec.instances) } : policy,
      instances: job.spec.instances,
      hasChecks: hasHealthChecks(job.spec),
      tasks,
      inPlace: (v) => inPlace.get(v) === true,
      now,
    });
    const writes: TaskInstance[] = [];
    const stops: { t: TaskInstance; why: string }[] = [];
    let revertTo: number | undefined;
    for (const a of step.actions) {
      if (a.kind === "revert") {
        revertTo = a.toVersion;
        continue;
      }
      const w = this.carryOut(job, a, now);
      if (!w) continue;
      writes.push(w);
      if (a.kind === "stop" && w.state !== "killed") stops.push({ t: w, why: a.why });
    }
    await this.d.writer.put(writes);
    const drainMs = drainDelayOf(job);
    for (const s of stops) this.d.sender.stop(s.t, s.why, drainMs);
    if (step.deployment !== d) {
      const ended = step.deployment;
      // The version's outcome first: whoever sees the deployment ended finds it recorded (a step repeated after a failover records it again).
      if (!isActive(ended)) await this.d.versions.recordOutcome(job.id, d.version, { status: ended.status, description: ended.description, finishedAt: ended.finishedAt ?? now });
      const cur = this.d.store.jobs.get(job.id) ?? job;
      await this.d.store.updateJob({ ...cur, deployment: ended, updatedAt: now });
      if (ended.status !== d.status) this.d.log.info({ job: job.id, version: d.version, status: ended.status, why: ended.description }, "deployment status");
    }
    if (revertTo !== undefined) await this.revert(job.id, revertTo);
  }

  /** The record an action writes (undefined: nothing to write). */
  private carryOut(job: Job, a: Exclude<DeploymentAction, { kind: "revert" }>, now: number): TaskInstance | undefined {
    const cur = this.d.store.task(job.id, a.index);
    const version = job.deployment!.version;
    switch (a.kind) {
      case "adopt":
        return cur && withEvent({ ...cur, version, versionSince: now, canary: undefined }, "updated", `updated in place to version ${version}`, now);
      case "stop":
        if (!cur || cur.desired === "stop") return undefined;
        // Not running yet: nothing to drain.
        if (cur.state === "pending") return withEvent({ ...cur, desired: "stop", state: "killed", finishedAt: now, reason: a.why }, "killed", a.why, now);
        return withEvent({ ...cur, desired: "stop" }, "replace", `${a.why}: draining`, now);
      case "start": {
        const fresh = newTask(job, a.index, 0, now);
        // A slot's attempts carry on, so an agent still holding the previous attempt of this task id tells them apart.
        const t: TaskInstance = { ...fresh, attempt: cur?.attempt ?? 0, version, versionSince: now, ...(a.canary ? { canary: true } : {}) };
        return withEvent(t, "created", `version ${version}${a.canary ? " (canary)" : ""}`, now);
      }
    }
  }
}
