import type { Logger } from "../../common/logger.js";
import { ConflictError, NotFoundError, StaleEpochError, TorcaError } from "../../common/errors.js";
import type { AgentReport, ReportedTask, TaskDispatch } from "../../common/protocol.js";
import {
  jobIdOf,
  parseTaskId,
  taskIdOf,
  TERMINAL_TASK_STATES,
  type ExitInfo,
  type Job,
  type JobSpec,
  type NodeInfo,
  type TaskInstance,
} from "../../common/types.js";
import type { ZkStateStore } from "../../coord/state-store.js";
import type { Collector } from "../collector/collector.js";
import type { Dispatcher } from "../dispatcher/dispatcher.js";
import { CronScheduler } from "../cron/cron.js";
import { decideAfterExit } from "../lifecycle/restart-policy.js";
import { placeTasks, type Allocation, type PlacementResult, type TaskToPlace } from "../scheduler/index.js";
import { deriveJobStatus } from "./job-status.js";

/**
 * The primary's control loop. Only the elected primary runs one, and it stops
 * for good the moment its ZooKeeper session is lost (`fence()`): from then on
 * it neither writes nor dispatches.
 *
 * Events reach the event stream from the state copy's change events (in
 * manager.ts), on the primary and the backups alike, so none is published here.
 *
 * All mutations (ticks, agent reports, API writes) run one at a time through
 * `serial`, so the in-memory copy and ZooKeeper never disagree about order.
 * Writes reach ZooKeeper before the effect they describe: a task is recorded
 * as dispatched (with its new attempt) before the agent is told to start it,
 * so a crash between the two is caught by reconciliation, never a duplicate.
 */

export interface PrimaryOptions {
  epoch: number;
  schedulerIntervalMs: number;
  /** After takeover, how long agents get to report before missing tasks are presumed gone. */
  reconcileGraceMs: number;
  /** A dispatched task the agent does not report after this long is redispatched. */
  missingGraceMs: number;
  stopGraceMs: number;
  now?: () => number;
}

export type AlertSink = (kind: string, key: string, data: { job?: Job; task?: TaskInstance; node?: NodeInfo; text: string }) => void;

const MAX_EVENTS = 30;
const WRITE_PARALLELISM = 64;

export class Primary {
  private fenced = false;
  private timer?: NodeJS.Timeout;
  private queue: Promise<unknown> = Promise.resolve();
  private tickQueued = false;
  private readonly startedAt: number;
  private readonly lastStopSent = new Map<string, number>();
  private readonly now: () => number;
  private lastPlan = new Map<string, string>();
  /** The task revision each job's status was last derived at (per job object: a changed job is derived again). */
  private readonly statusRevision = new WeakMap<Job, number>();
  /**
   * Each placed task's allocation, built once per task version (task records
   * are replaced, never changed, on every update): every tick with pending
   * work hands the scheduler all 100,000 allocations, and building them anew
   * each time was most of the primary's garbage during a large submission.
   */
  private readonly allocationOf = new WeakMap<TaskInstance, { spec: JobSpec; alloc: Allocation }>();
  private readonly cron: CronScheduler;

  constructor(
    private readonly store: ZkStateStore,
    private readonly collector: Collector,
    private readonly dispatcher: Dispatcher,
    private readonly opts: PrimaryOptions,
    private readonly log: Logger,
    private readonly alert: AlertSink = () => undefined,
  ) {
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.cron = new CronScheduler(
      (jobId, at, catchUp) => void this.fireCron(jobId, at, catchUp).catch((e) => this.warn(`cron ${jobId}`, e)),
      (jobId, at) => {
        const job = this.store.jobs.get(jobId);
        if (job) this.alert("cron-missed", `cron-missed:${jobId}:${at}`, { job, text: `cron job ${jobId} missed its run of ${new Date(at).toISOString()} (older than the catch-up window)` });
      },
      log,
      this.now,
    );
  }

  get epoch(): number {
    return this.opts.epoch;
  }

  get isActive(): boolean {
    return !this.fenced;
  }

  start(): void {
    this.collector.on("node-lost", this.onNodeLost);
    this.collector.on("node-up", this.onNodeChange);
    this.collector.on("node-changed", this.onNodeChange);
    this.timer = setInterval(() => this.requestTick(), this.opts.schedulerIntervalMs);
    this.requestTick();
  }

  /** Stops acting at once and for good (session lost, deposed, or shutting down). */
  fence(): void {
    if (this.fenced) return;
    this.fenced = true;
    if (this.timer) clearInterval(this.timer);
    this.cron.stop();
    this.collector.off("node-lost", this.onNodeLost);
    this.collector.off("node-up", this.onNodeChange);
    this.collector.off("node-changed", this.onNodeChange);
  }

  /** Resolves when queued work has drained (used by tests and shutdown). */
  async idle(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.fenced) throw new TorcaError("not_primary", "this manager is no longer the primary", { status: 503 });
      return fn();
    });
    this.queue = run.catch(() => undefined);
    // A version conflict means our copy was behind (the store reloads the node);
    // the next tick works from fresh data. Fencing itself needs no help here:
    // a deposed primary's session is expired, so ZooKeeper refuses all its writes.
    return run.catch((e) => {
      if (e instanceof ConflictError) this.requestTick();
      throw e;
    });
  }

  private readonly onNodeLost = (n: NodeInfo) => {
    void this.serial(() => this.handleNodeLost(n)).catch((e) => this.warn("node lost handling", e));
  };

  private readonly onNodeChange = () => this.requestTick();

  requestTick(): void {
    if (this.fenced || this.tickQueued) return;
    this.tickQueued = true;
    void this.serial(async () => {
      this.tickQueued = false;
      await this.tick();
    }).catch((e) => {
      this.tickQueued = false;
      this.warn("tick", e);
    });
  }

  private warn(what: string, e: unknown): void {
    if (!this.fenced) this.log.warn({ err: e instanceof Error ? e.message : String(e) }, `${what} failed`);
  }

  // ---------------------------------------------------------------- API writes

  async submit(spec: JobSpec, source: string, packageDigest: string | undefined): Promise<Job> {
    return this.serial(async () => {
      const id = jobIdOf(spec.namespace, spec.name);
      const existing = this.store.jobs.get(id);
      if (existing) {
        const status = deriveJobStatus(existing, this.store.tasksOf(id));
        const live = existing.desired === "run" && !(existing.spec.type === "batch" && !existing.spec.schedule && (status === "complete" || status === "failed"));
        if (live || status === "running") throw new ConflictError(`job ${id} is live; kill it first or choose another name`, { jobId: id });
        await this.store.deleteJob(id);
      }
      const now = this.now();
      const job: Job = {
        id,
        spec,
        source,
        status: "pending",
        desired: "run",
        submittedAt: now,
        updatedAt: now,
        ...(packageDigest ? { packageDigest } : {}),
        ...(spec.schedule ? { cron: { runs: 0 } } : {}),
      };
      await this.store.createJob(job);
      this.requestTick();
      return job;
    });
  }

  async kill(jobId: string): Promise<Job> {
    return this.serial(async () => {
      const job = this.store.jobs.get(jobId);
      if (!job) throw new NotFoundError("job", jobId);
      if (job.desired !== "stop") {
        const next: Job = { ...job, desired: "stop", updatedAt: this.now() };
        await this.store.updateJob(next);
      }
      const stops: TaskInstance[] = [];
      for (const t of this.store.tasksOf(jobId)) {
        if (t.desired === "stop") continue;
        if (t.state === "pending") {
          this.lastPlan.delete(t.id);
          stops.push(this.withEvent({ ...t, desired: "stop", state: "killed", finishedAt: this.now(), reason: "job killed" }, "killed", "job killed before it started"));
        } else if (!TERMINAL_TASK_STATES.has(t.state)) {
          stops.push(this.withEvent({ ...t, desired: "stop" }, "kill", "job killed: stopping"));
        }
      }
      await this.putTasks(stops);
      for (const t of stops) if (t.state !== "killed") this.sendStop(t);
      this.requestTick();
      return this.store.jobs.get(jobId)!;
    });
  }

  async drain(nodeId: string, on: boolean): Promise<void> {
    return this.serial(async () => {
      if (!this.collector.node(nodeId)) throw new NotFoundError("node", nodeId);
      await this.collector.setDrain(nodeId, on);
      if (on) await this.migrateOffDrainingNodes();
      this.requestTick();
    });
  }

  /** Dry run: where the job's instances would go now, or exactly why not. */
  plan(spec: JobSpec, packageDigest?: string): PlacementResult {
    const id = jobIdOf(spec.namespace, spec.name);
    const pending: TaskToPlace[] = Array.from({ length: spec.instances }, (_, i) => ({ taskId: taskIdOf(id, i), jobId: id, spec, ...(packageDigest ? { packageDigest } : {}) }));
    return placeTasks(pending, { nodes: this.collector.nodes(), allocations: this.allocations() });
  }

  // ---------------------------------------------------------------- reports

  /**
   * Reconciles one agent's full report. Resolves with the exits it reported
   * that need no further reporting ("taskId#attempt"): once the writes of this
   * reconcile are durable, every reported exit is either recorded in
   * ZooKeeper or belongs to an attempt the cell no longer wants. The agent
   * leaves those out of later reports, so a report stays the size of what is
   * live rather than of the last hour's finished tasks.
   */
  async handleReport(report: AgentReport): Promise<{ recorded: string[] }> {
    this.collector.noteReport(report);
    await this.serial(() => this.reconcileNode(report));
    return { recorded: report.tasks.filter((t) => t.state === "exited").map((t) => `${t.taskId}#${t.attempt}`) };
  }

  private async reconcileNode(report: AgentReport): Promise<void> {
    const nodeId = report.agentId;
    const seen = new Set<string>();
    const updates: TaskInstance[] = [];
    for (const rt of report.tasks) {
      const ref = parseTaskId(rt.taskId);
      const t = ref ? this.store.task(ref.jobId, ref.index) : undefined;
      const current = t && t.nodeId === nodeId && t.attempt === rt.attempt && (t.state === "dispatched" || t.state === "running");
      if (!current) {
        // Level-triggered: whatever the agent runs that we did not ask for stops.
        if (rt.state !== "exited") this.sendStop({ id: rt.taskId, attempt: rt.attempt, nodeId }, "not assigned to this node");
        continue;
      }
      seen.add(t.id);
      const next = this.applyReported(t, rt);
      if (next) updates.push(next);
    }
    if (this.now() - this.startedAt >= this.opts.reconcileGraceMs) {
      for (const t of this.store.tasksOnNode(nodeId)) {
        if (t.nodeId !== nodeId || seen.has(t.id)) continue;
        if (t.state !== "dispatched" && t.state !== "running") continue;
        if (t.dispatchedAt !== undefined && this.now() - t.dispatchedAt < this.opts.missingGraceMs) continue;
        updates.push(this.toPending(t, `task missing from node ${nodeId}`));
      }
    }
    await this.putTasks(updates);
    if (updates.length) this.requestTick();
  }

  private applyReported(t: TaskInstance, rt: ReportedTask): TaskInstance | undefined {
    if (rt.state === "exited") {
      const exit: ExitInfo = rt.exit ?? { exitCode: null, signal: null, oomKilled: false, reason: rt.error ?? "exited" };
      return this.afterExit(t, exit, rt.finishedAt);
    }
    if (t.desired === "stop") {
      this.sendStop(t);
      return undefined;
    }
    if (rt.state === "running" && t.state !== "running") {
      return this.withEvent({ ...t, state: "running", startedAt: rt.startedAt ?? this.now(), ports: rt.ports ?? t.ports, reason: undefined }, "running", `running on ${t.nodeId}`);
    }
    if (rt.ports && JSON.stringify(rt.ports) !== JSON.stringify(t.ports ?? {})) return { ...t, ports: rt.ports, updatedAt: this.now() };
    return undefined;
  }

  private afterExit(t: TaskInstance, exit: ExitInfo, finishedAt?: number): TaskInstance {
    const now = this.now();
    const base = { ...t, exit, finishedAt: finishedAt ?? now, updatedAt: now };
    this.lastStopSent.delete(t.id);
    if (t.desired === "stop") return this.withEvent({ ...base, state: "killed", reason: "killed" }, "killed", exit.reason);
    const job = this.store.jobs.get(t.jobId);
    if (!job) return this.withEvent({ ...base, state: "killed" }, "killed", "job gone");
    if (exit.oomKilled) this.alert("task-oom-killed", `task-oom-killed:${t.id}:${t.attempt}`, { job, task: t, text: `task ${t.id} was OOM-killed on ${t.nodeId}` });
    const d = decideAfterExit(job.spec, t, exit);
    switch (d.action) {
      case "complete":
        return this.withEvent({ ...base, state: "completed", reason: undefined }, "completed", exit.reason);
      case "restart-same-node":
        return this.withEvent(
          { ...base, state: "pending", stickyNode: t.nodeId, restartsOnNode: t.restartsOnNode + 1, notBefore: now + d.delayMs, reason: `restarting after ${exit.reason}` },
          "exited",
          `${exit.reason}; restart ${t.restartsOnNode + 1}/${job.spec.restart.attempts} in ${d.delayMs} ms`,
        );
      case "migrate":
        return this.withEvent(
          {
            ...base,
            state: "pending",
            stickyNode: undefined,
            restartsOnNode: 0,
            migrations: t.migrations + 1,
            avoidNodes: [...new Set([...(t.avoidNodes ?? []), ...(t.nodeId ? [t.nodeId] : [])])],
            notBefore: now + d.delayMs,
            reason: `migrating after ${exit.reason}`,
          },
          "exited",
          `${exit.reason}; restarts on ${t.nodeId} exhausted, migrating`,
        );
      case "fail": {
        const failed = this.withEvent({ ...base, state: "failed", reason: d.reason }, "failed", d.reason);
        this.alert("task-failed", `task-failed:${t.id}:${t.attempt}`, { job, task: failed, text: `task ${t.id} failed: ${d.reason}` });
        return failed;
      }
    }
  }

  private async handleNodeLost(n: NodeInfo): Promise<void> {
    const updates: TaskInstance[] = [];
    for (const t of this.store.tasksOnNode(n.id)) {
      if (t.nodeId !== n.id || (t.state !== "dispatched" && t.state !== "running")) continue;
      const job = this.store.jobs.get(t.jobId);
      if (t.desired === "stop") {
        updates.push(this.withEvent({ ...t, state: "lost", finishedAt: this.now(), reason: `node ${n.id} lost` }, "lost", `node ${n.id} lost`));
        continue;
      }
      const next = this.toPending(t, `node ${n.id} lost`);
      updates.push(this.withEvent(next, "lost", `node ${n.id} lost; rescheduling`));
      if (job) this.alert("task-lost", `task-lost:${t.id}:${t.attempt}`, { job, task: t, node: n, text: `task ${t.id} lost with node ${n.id}; rescheduling` });
    }
    this.alert("node-lost", `node-lost:${n.id}:${n.lastReportAt}`, { node: n, text: `node ${n.id} (${n.host}) lost; ${updates.length} task(s) affected` });
    await this.putTasks(updates);
    this.requestTick();
  }

  private async migrateOffDrainingNodes(): Promise<void> {
    const draining = new Set(this.collector.nodes().filter((n) => n.state === "draining").map((n) => n.id));
    if (draining.size === 0) return;
    const updates: TaskInstance[] = [];
    for (const t of this.store.allTasks()) {
      if (!t.nodeId || !draining.has(t.nodeId) || t.desired !== "run") continue;
      if (t.state !== "dispatched" && t.state !== "running") continue;
      this.sendStop(t, "node draining");
      updates.push(this.withEvent(this.toPending(t, `migrating: node ${t.nodeId} draining`), "migrate", `node ${t.nodeId} draining`));
    }
    await this.putTasks(updates);
  }

  // ---------------------------------------------------------------- cron

  /** One firing of a cron job: recorded durably first (never doubled), then its run's tasks follow from expandJobs. */
  async fireCron(jobId: string, at: number, catchUp: boolean): Promise<void> {
    return this.serial(async () => {
      const job = this.store.jobs.get(jobId);
      if (!job || job.desired !== "run" || !job.spec.schedule) return;
      const cron = job.cron ?? { runs: 0 };
      if ((cron.lastFiring ?? 0) >= at) return;
      const busy = this.store.tasksOf(jobId).some((t) => !TERMINAL_TASK_STATES.has(t.state));
      if (busy) {
        // The previous run is still going: skipping is recorded and alerted, never silent.
        await this.store.updateJob({ ...job, cron: { ...cron, lastFiring: at }, updatedAt: this.now() });
        this.alert("cron-missed", `cron-missed:${jobId}:${at}`, { job, text: `cron job ${jobId}: run of ${new Date(at).toISOString()} skipped, the previous run is still active` });
        return;
      }
      const next: Job = { ...job, cron: { lastFiring: at, runs: cron.runs + 1 }, updatedAt: this.now() };
      await this.store.updateJob(next);
      this.log.info({ job: jobId, run: cron.runs + 1, at: new Date(at).toISOString(), catchUp }, "cron fired");
      await this.expandJobs();
      this.requestTick();
    });
  }

  // ---------------------------------------------------------------- the tick

  /** Each phase runs even when an earlier one failed, so one bad record never stalls the whole cell. */
  private async tick(): Promise<void> {
    this.cron.sync(this.store.jobs.values());
    const phases: [string, () => Promise<void>][] = [
      ["expand jobs", () => this.expandJobs()],
      ["recover orphans", () => this.recoverOrphans()],
      ["migrate off draining nodes", () => this.migrateOffDrainingNodes()],
      ["schedule and dispatch", () => this.scheduleAndDispatch()],
      ["resend stops", async () => this.resendStops()],
      ["update job statuses", () => this.updateJobStatuses()],
    ];
    let first: unknown;
    for (const [name, phase] of phases) {
      if (this.fenced) return;
      try {
        await phase();
      } catch (e) {
        first ??= e;
        this.log.warn({ phase: name, err: e instanceof Error ? e.message : String(e) }, "tick phase failed");
      }
    }
    if (first) throw first;
  }

  /**
   * Creates the task instance records of every live job. For cron jobs, the
   * instances of the current run (`cron.runs`), replacing finished ones of
   * earlier runs: level-triggered, so a run recorded by a primary that died
   * before creating its tasks is completed by the next one.
   */
  private async expandJobs(): Promise<void> {
    const creates: TaskInstance[] = [];
    for (const job of this.store.jobs.values()) {
      if (job.desired !== "run") continue;
      if (job.spec.schedule) {
        const run = job.cron?.runs ?? 0;
        if (run === 0) continue;
        const byIndex = new Map(this.store.tasksOf(job.id).map((t) => [t.index, t]));
        for (let i = 0; i < job.spec.instances; i++) {
          const t = byIndex.get(i);
          if (!t) creates.push(this.newTask(job, i, run));
          else if (t.run < run && TERMINAL_TASK_STATES.has(t.state)) {
            creates.push(this.withEvent({ ...this.newTask(job, i, run), attempt: t.attempt, createdAt: t.createdAt, events: t.events }, "created", `run ${run} created`));
          }
        }
        continue;
      }
      if (this.store.taskCount(job.id) >= job.spec.instances) continue;
      const existing = this.store.tasksOf(job.id);
      const have = new Set(existing.map((t) => t.index));
      for (let i = 0; i < job.spec.instances; i++) if (!have.has(i)) creates.push(this.newTask(job, i, 0));
    }
    await this.putTasks(creates);
  }

  newTask(job: Job, index: number, run: number): TaskInstance {
    const now = this.now();
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
    };
  }

  /** Tasks bound to nodes that are gone (e.g. lost while no primary was watching). */
  private async recoverOrphans(): Promise<void> {
    if (this.now() - this.startedAt < this.opts.reconcileGraceMs) return;
    const updates: TaskInstance[] = [];
    // By node: a look-up per node holding tasks, not per task.
    const gone = [...this.store.nodesWithTasks()].filter((id) => {
      const n = this.collector.node(id);
      return !n || n.state === "lost";
    });
    for (const t of gone.flatMap((id) => [...this.store.tasksOnNode(id)])) {
      if (t.state !== "dispatched" && t.state !== "running") continue;
      if (t.desired === "stop") updates.push(this.withEvent({ ...t, state: "lost", finishedAt: this.now() }, "lost", `node ${t.nodeId} gone`));
      else updates.push(this.withEvent(this.toPending(t, `node ${t.nodeId} gone`), "lost", `node ${t.nodeId} gone; rescheduling`));
    }
    await this.putTasks(updates);
  }

  allocations(): Allocation[] {
    const out: Allocation[] = [];
    const holding = [this.store.tasksWhere("run", "dispatched"), this.store.tasksWhere("run", "running"), this.store.tasksWhere("stop", "dispatched"), this.store.tasksWhere("stop", "running")];
    for (const group of holding) {
      for (const t of group) {
        if (!t.nodeId) continue;
        const job = this.store.jobs.get(t.jobId);
        if (!job) continue;
        let a = this.allocationOf.get(t);
        if (a?.spec !== job.spec) {
          a = { spec: job.spec, alloc: { taskId: t.id, jobId: t.jobId, nodeId: t.nodeId, resources: job.spec.resources, priority: job.spec.priority, staticPorts: job.spec.ports.flatMap((p) => (p.static ? [p.static] : [])) } };
          this.allocationOf.set(t, a);
        }
        out.push(a.alloc);
      }
    }
    return out;
  }

  private async scheduleAndDispatch(): Promise<void> {
    const now = this.now();
    const pending: TaskInstance[] = [];
    for (const t of this.store.tasksWhere("run", "pending")) {
      if ((t.notBefore ?? 0) <= now && this.store.jobs.has(t.jobId)) pending.push(t);
    }
    if (pending.length === 0) return;
    const nodes = this.collector.nodes();
    const ready = new Map(nodes.filter((n) => n.state === "ready").map((n) => [n.id, n]));
    const bound: { task: TaskInstance; nodeId: string }[] = [];
    const toPlace: TaskInstance[] = [];
    for (const t of pending) {
      if (t.stickyNode && ready.has(t.stickyNode)) bound.push({ task: t, nodeId: t.stickyNode });
      else toPlace.push(t);
    }
    const allocations = this.allocations();
    for (const b of bound) {
      const job = this.store.jobs.get(b.task.jobId)!;
      allocations.push({ taskId: b.task.id, jobId: b.task.jobId, nodeId: b.nodeId, resources: job.spec.resources, priority: job.spec.priority, staticPorts: [] });
    }
    // Tasks that must avoid some nodes are placed on their own, against a filtered snapshot.
    const groups = new Map<string, TaskInstance[]>();
    for (const t of toPlace) {
      const key = (t.avoidNodes ?? []).join(",");
      const g = groups.get(key);
      if (g) g.push(t);
      else groups.set(key, [t]);
    }
    const victims: { victimTaskId: string; forTaskId: string; nodeId: string }[] = [];
    const unplaced = new Map<string, string>();
    const exhausted: TaskInstance[] = [];
    for (const [key, group] of groups) {
      const avoid = new Set(key ? key.split(",") : []);
      const snapNodes = avoid.size ? nodes.filter((n) => !avoid.has(n.id)) : nodes;
      if (avoid.size && ready.size > 0 && !snapNodes.some((n) => n.state === "ready")) {
        // The task already failed on every usable node: waiting for a new machine could take forever.
        exhausted.push(...group);
        continue;
      }
      const input: TaskToPlace[] = group.map((t) => {
        const job = this.store.jobs.get(t.jobId)!;
        return { taskId: t.id, jobId: t.jobId, spec: job.spec, ...(job.packageDigest ? { packageDigest: job.packageDigest } : {}) };
      });
      const result = placeTasks(input, { nodes: snapNodes, allocations }, { seed: now & 0xffff });
      const byId = new Map(group.map((t) => [t.id, t]));
      for (const p of result.placements) {
        const t = byId.get(p.taskId)!;
        bound.push({ task: t, nodeId: p.nodeId });
        const job = this.store.jobs.get(t.jobId)!;
        allocations.push({ taskId: t.id, jobId: t.jobId, nodeId: p.nodeId, resources: job.spec.resources, priority: job.spec.priority, staticPorts: [] });
      }
      victims.push(...result.preemptions);
      for (const u of result.unplaced) unplaced.set(u.taskId, u.summary);
    }

    // Preempted tasks go back to pending; their agents are told to stop them.
    const updates: TaskInstance[] = [];
    for (const v of victims) {
      const ref = parseTaskId(v.victimTaskId);
      const t = ref ? this.store.task(ref.jobId, ref.index) : undefined;
      if (!t) continue;
      this.sendStop(t, `preempted by ${v.forTaskId}`);
      updates.push(this.withEvent(this.toPending(t, `preempted by ${v.forTaskId}`), "preempted", `preempted by ${v.forTaskId} on ${v.nodeId}`));
    }
    for (const t of exhausted) {
      const job = this.store.jobs.get(t.jobId)!;
      if (job.spec.type === "service") {
        // Services keep running: start over on any node, with the backoff of a first restart.
        updates.push(this.withEvent({ ...t, avoidNodes: undefined, notBefore: now + job.spec.restart.delayMs }, "retry", "failed on every usable node; trying all nodes again"));
        continue;
      }
      const reason = `failed on every usable node (${(t.avoidNodes ?? []).join(", ")}); last: ${t.exit?.reason ?? "unknown"}`;
      const failed = this.withEvent({ ...t, state: "failed", finishedAt: now, reason }, "failed", reason);
      updates.push(failed);
      this.alert("task-failed", `task-failed:${t.id}:${t.attempt}`, { job, task: failed, text: `task ${t.id} failed: ${reason}` });
    }
    for (const t of toPlace) {
      const why = unplaced.get(t.id);
      if (why && this.lastPlan.get(t.id) !== why) {
        this.lastPlan.set(t.id, why);
        updates.push({ ...t, reason: `no node fits: ${why}`, updatedAt: now });
      }
    }
    await this.putTasks(updates);

    // Record the dispatch durably (new attempt) before telling the agent.
    const dispatched = bound.map(({ task, nodeId }) =>
      this.withEvent(
        { ...this.latest(task), state: "dispatched" as const, nodeId, lastNodeId: nodeId, attempt: task.attempt + 1, dispatchedAt: now, stickyNode: undefined, reason: undefined, notBefore: undefined, exit: undefined },
        "dispatched",
        `attempt ${task.attempt + 1} on ${nodeId}`,
      ),
    );
    for (const t of dispatched) this.lastPlan.delete(t.id);
    // Chunk by chunk, each sent once durable: agents start on the first tasks
    // while the rest are still being written (a 1,000-instance job no longer
    // waits for all 1,000 writes before anything runs).
    // A failed write holds back only its own task: the others of its chunk are
    // recorded as dispatched and would otherwise wait out the missing-task grace.
    let firstError: unknown;
    for (let i = 0; i < dispatched.length; i += WRITE_PARALLELISM) {
      if (this.fenced) break;
      const chunk = dispatched.slice(i, i + WRITE_PARALLELISM);
      const results = await Promise.allSettled(chunk.map((t) => this.store.putTask(t)));
      results.forEach((r, k) => {
        const t = chunk[k]!;
        if (r.status === "fulfilled") this.dispatchNow(t, ready.get(t.nodeId!) ?? this.collector.node(t.nodeId!)!);
        else firstError ??= r.reason;
      });
    }
    if (firstError) throw firstError;
  }

  private latest(t: TaskInstance): TaskInstance {
    return this.store.task(t.jobId, t.index) ?? t;
  }

  private dispatchNow(t: TaskInstance, node: NodeInfo): void {
    const job = this.store.jobs.get(t.jobId)!;
    const d: TaskDispatch = { epoch: this.opts.epoch, taskId: t.id, jobId: t.jobId, index: t.index, attempt: t.attempt, spec: job.spec, ...(job.packageDigest ? { packageDigest: job.packageDigest } : {}) };
    if (this.fenced) return;
    this.dispatcher.start(node.url, d).catch((e: unknown) => {
      if (e instanceof StaleEpochError || (e instanceof TorcaError && e.code === "stale_epoch")) {
        this.log.error({ node: node.id }, "agent refused our epoch: a newer primary exists; fencing");
        this.fence();
        return;
      }
      this.warn(`dispatch ${t.id} to ${node.id}`, e);
      void this.serial(async () => {
        const cur = this.store.task(t.jobId, t.index);
        if (!cur || cur.attempt !== t.attempt || cur.state !== "dispatched") return;
        const next = this.toPending(cur, `dispatch to ${node.id} failed: ${e instanceof Error ? e.message : String(e)}`);
        await this.putTasks([{ ...next, notBefore: this.now() + 1000 }]);
      }).catch((err) => this.warn("dispatch failure handling", err));
    });
  }

  private toPending(t: TaskInstance, reason: string): TaskInstance {
    return { ...t, state: "pending", nodeId: undefined, stickyNode: undefined, restartsOnNode: 0, ports: undefined, reason, updatedAt: this.now() };
  }

  private sendStop(t: Pick<TaskInstance, "id" | "attempt" | "nodeId">, why = "stop"): void {
    if (this.fenced || !t.nodeId) return;
    const node = this.collector.node(t.nodeId);
    if (!node || node.state === "lost") return;
    const key = `${t.id}#${t.attempt}@${t.nodeId}`;
    const last = this.lastStopSent.get(key) ?? 0;
    if (this.now() - last < 5000) return;
    this.lastStopSent.set(key, this.now());
    this.log.info({ task: t.id, attempt: t.attempt, node: t.nodeId, why }, "stopping task");
    this.dispatcher.stop(node.url, t.id, { epoch: this.opts.epoch, attempt: t.attempt, graceMs: this.opts.stopGraceMs }).catch((e: unknown) => {
      if (e instanceof TorcaError && e.code === "stale_epoch") this.fence();
      else this.warn(`stop ${t.id}`, e);
    });
  }

  private resendStops(): void {
    for (const t of [...this.store.tasksWhere("stop", "dispatched"), ...this.store.tasksWhere("stop", "running")]) this.sendStop(t);
    if (this.lastStopSent.size > 10_000) this.lastStopSent.clear();
  }

  /** One job's failed write must not hold up the others: errors are collected and the first rethrown. */
  private async updateJobStatuses(): Promise<void> {
    let first: unknown;
    for (const job of [...this.store.jobs.values()]) {
      // Derived again only when the job or one of its tasks changed since.
      const revision = this.store.taskRevision(job.id);
      if (this.statusRevision.get(job) === revision) continue;
      const status = deriveJobStatus(job, this.store.tasksOf(job.id));
      if (status === job.status) {
        this.statusRevision.set(job, revision);
        continue;
      }
      const next: Job = { ...job, status, updatedAt: this.now() };
      try {
        await this.store.updateJob(next);
        this.statusRevision.set(next, revision);
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }

  // ---------------------------------------------------------------- helpers

  private withEvent(t: TaskInstance, type: string, message: string): TaskInstance {
    const at = this.now();
    const events = [...t.events, { at, type, message }];
    return { ...t, updatedAt: at, events: events.length > MAX_EVENTS ? events.slice(events.length - MAX_EVENTS) : events };
  }

  private async putTasks(tasks: TaskInstance[]): Promise<void> {
    if (tasks.length === 0) return;
    if (this.fenced) throw new TorcaError("not_primary", "fenced", { status: 503 });
    for (let i = 0; i < tasks.length; i += WRITE_PARALLELISM) {
      await Promise.all(tasks.slice(i, i + WRITE_PARALLELISM).map((t) => this.store.putTask(t)));
    }
  }
}

