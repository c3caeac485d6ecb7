import type { Logger } from "../../common/logger.js";
import { ConflictError, IdempotencyKeyReusedError, isTorcaError, NotFoundError } from "../../common/errors.js";
import type { AgentReport, SignalRequest } from "../../common/protocol.js";
import { jobIdOf, parseTaskId, TERMINAL_TASK_STATES, type Job, type JobSpec, type NodeInfo, type PlacementStrategy, type TaskInstance } from "../../common/types.js";
import type { ZkStateStore } from "../../coord/state-store.js";
import type { Collector } from "../collector/collector.js";
import { ReportBatcher } from "../collector/report-batch.js";
import { orderMayHaveArrived, type Dispatcher } from "../dispatcher/dispatcher.js";
import { classifyRepeat, type IdempotentAnswer } from "../idempotency/keys.js";
import type { IdempotencyStore } from "../idempotency/store.js";
import { dispatchFailed, jobKilled, withEvent, type LifecycleAlert } from "../lifecycle/transitions.js";
import type { Quota } from "../quota/admission.js";
import type { HistoryStore } from "../../history/store.js";
import type { RetentionPolicy } from "../retention/decide.js";
import { Retirer } from "../retention/retirer.js";
import type { PlacementMetrics, PlacementResult, SmallestChange } from "../scheduler/index.js";
import { SchedulerWorkers } from "../placement/workers.js";
import { UsageLedger } from "../usage/ledger.js";
import { ReservationEstimates } from "../usage/reservations.js";
import { CronFirer } from "./cron-firing.js";
import { isLive } from "./job-status.js";
import type { DisconnectRules } from "./disconnect.js";
import { DisconnectedNodes } from "./disconnected-nodes.js";
import { reconcileReport, type ReconcileDecision } from "./reconcile.js";
import type { RoundDecision } from "./round.js";
import { TaskSender } from "./sender.js";
import { Admissions, type QueueHeld } from "./admissions.js";
import { SerialQueue } from "./serial-queue.js";
import { Tick, type Trimmer } from "./tick.js";
import { drainDelayOf, Rollouts, type DeploymentControl, type SubmitOutcome, type VersionPlan } from "../deployment/rollouts.js";
import type { JobVersion, VersionStore } from "../versions/store.js";
import { TaskWriter, type TaskStore } from "./writer.js";
import type { WorkflowStore } from "../workflow/store.js";
import { WorkflowRunner } from "../workflow/runner.js";

/**
 * The primary: a thin shell that feeds events (ticks, agent reports, API
 * writes, node changes, cron firings) into the pure lifecycle and placement
 * round, and carries out their decisions. Only the elected primary runs one,
 * and it stops for good the moment its ZooKeeper session is lost (`fence()`):
 * from then on it neither writes nor dispatches.
 *
 * Events reach the event stream from the state copy's change events (in
 * manager.ts), on the primary and the backups alike, so none is published here.
 *
 * All mutations run one at a time through the serial queue, except that a
 * submission of a new job name holds only that name (admissions.ts), so it
 * waits neither for a round nor for other submissions. Writes reach
 * ZooKeeper before the effect they describe: a task is recorded as dispatched
 * (with its new attempt) before the agent is told to start it, so a crash
 * between the two is caught by reconciliation, never a duplicate.
 */

export interface PrimaryOptions {
  epoch: number;
  schedulerIntervalMs: number;
  /** The placement strategy of jobs that name none (manager.placementStrategy; default binpack). */
  placementStrategy?: PlacementStrategy;
  /** Scheduler worker threads placing each round (0 or absent: the main thread places). */
  schedulerWorkers?: number;
  /** After takeover, how long agents get to report before missing tasks are presumed gone. */
  reconcileGraceMs: number;
  /** A dispatched task the agent does not report after this long is redispatched. */
  missingGraceMs: number;
  stopGraceMs: number;
  /** When a node without its ZooKeeper node is declared lost (primary/disconnect.ts). */
  disconnect: DisconnectRules;
  /** Batch work on capacity prod tasks reserved but do not use (docs/reclamation.md); absent: off. */
  reclamation?: { enabled: boolean; margin: number; windowMs: number };
  /** False while this primary's ZooKeeper session is not connected: nothing migrates then. */
  zookeeperWritable: () => boolean;
  /** Submissions' Idempotency-Keys (trimmed by the tick). */
  idempotency: IdempotencyStore;
  /** Other records that expire, trimmed by the tick besides the Idempotency-Keys (e.g. expired tokens). */
  trimmers?: readonly Trimmer[];
  now?: () => number;
  /** The namespaces' quotas as stored now, checked at admission; absent: every namespace is unlimited. */
  quotas?: { current(namespace: string): Promise<Quota | undefined> };
  /** When finished work leaves ZooKeeper (default: an hour, 1000 per namespace). */
  retention?: RetentionPolicy;
  /** The history store finished work is archived to; undefined while it opens (nothing retires meanwhile). */
  history?: () => HistoryStore | undefined;
  /** Waits for the history store to open (a reused name archives the finished job first). */
  historyReady?: () => Promise<HistoryStore | undefined>;
  /** The versions of live jobs (versions/store.ts). */
  versions: VersionStore;
  /** Where workflows are kept; absent: this primary runs none. */
  workflows?: WorkflowStore;
  /** Told what the primary did (the manager's metrics); it decides nothing. */
  observer?: PrimaryObserver;
}

/** Why a primary stopped acting; every reason but a shutdown is a fencing event. */
export type FenceReason = "session-lost" | "deposed" | "stale-epoch" | "shutdown";

/** What the primary reports as it acts: each placement round, each task record written, the end of its term by fencing. */
export interface PrimaryObserver {
  round(decision: RoundDecision, ms: number): void;
  /** `prev`: the record as it was before the write (undefined for a new one). */
  taskWritten(prev: TaskInstance | undefined, next: TaskInstance): void;
  fenced(reason: Exclude<FenceReason, "shutdown">): void;
}

/**
 * How long an agent's observation of a live task (running, ports, health)
 * may sit in the primary's copy before its chunk is written for it: a chunk's
 * observations in that time go in one write, and a backup's copy is that
 * much behind the primary's for them.
 */
export const DEFERRED_WRITE_MS = 2000;

const DEFAULT_RETENTION: RetentionPolicy = { terminalMs: 3_600_000, keepPerNamespace: 1000, batch: 200 };

export type AlertSink = (kind: string, key: string, data: { job?: Job; task?: TaskInstance; node?: NodeInfo; text: string }) => void;

export class Primary {
  private fenced = false;
  private timer?: NodeJS.Timeout;
  private deferredTimer?: NodeJS.Timeout;
  private flushingDeferred = false;
  private schedulerWorkers?: SchedulerWorkers;
  private tickQueued = false;
  private readonly startedAt: number;
  private readonly now: () => number;
  private readonly queue: SerialQueue;
  /** Submissions and whatever grows a reservation: per-name locks and synchronous quota reservations (admissions.ts), so a submission waits neither for a round nor for other submissions. */
  private readonly admissions: Admissions;
  /** Agents' reports waiting for the queue, reconciled together. */
  private readonly reports: ReportBatcher<AgentReport, void>;
  private readonly writer: TaskWriter;
  private readonly sender: TaskSender;
  private readonly ticks: Tick;
  private readonly cron: CronFirer;
  private readonly disconnected: DisconnectedNodes;
  /** Per-task usage from the agents' reports (archived with each task; read by pages and estimates). */
  readonly usage = new UsageLedger();
  /** Reservation estimates of running tasks (usage/estimate.ts), for the pages and reclamation. */
  readonly reservations: ReservationEstimates;
  readonly retirer: Retirer;
  /** Workflows: their tick phase and the API's submit, kill and resume (undefined without a workflow store). */
  readonly workflows?: WorkflowRunner;
  readonly rollouts: Rollouts;

  constructor(
    private readonly store: ZkStateStore,
    private readonly collector: Collector,
    dispatcher: Dispatcher,
    private readonly opts: PrimaryOptions,
    private readonly log: Logger,
    private readonly alert: AlertSink = () => undefined,
  ) {
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.reservations = new ReservationEstimates({ margin: opts.reclamation?.margin ?? 0.2, windowMs: opts.reclamation?.windowMs ?? 300_000 });
    this.queue = new SerialQueue(() => this.fenced, () => this.requestTick());
    this.reports = new ReportBatcher((fn) => this.queue.run(fn), (batch) => this.reconcileReports(batch));
    this.admissions = new Admissions(this.queue, (id) => this.store.jobs.has(id), () => this.fenced, () => this.requestTick());
    this.writer = new TaskWriter(opts.observer ? observedTasks(store, opts.observer) : store, () => this.fenced);
    this.sender = new TaskSender(
      dispatcher,
      {
        epoch: opts.epoch,
        stopGraceMs: opts.stopGraceMs,
        now: this.now,
        isFenced: () => this.fenced,
        fence: () => this.fence("stale-epoch"),
        node: (id) => this.collector.node(id),
        job: (id) => this.store.jobs.get(id),
        onDispatchFailed: (t, node, e) => void this.queue.run(() => this.handleDispatchFailure(t, node, e)).catch((err) => this.warn("dispatch failure handling", err)),
      },
      log,
    );
    this.disconnected = new DisconnectedNodes({
      store,
      collector,
      writer: this.writer,
      log,
      now: this.now,
      rules: opts.disconnect,
      zookeeperWritable: opts.zookeeperWritable,
      alert,
      raise: (alerts, node) => this.raise(alerts, node),
    });
    const retention = opts.retention ?? DEFAULT_RETENTION;
    this.retirer = new Retirer({
      store,
      history: opts.history ?? (() => undefined),
      ...(opts.historyReady ? { historyReady: opts.historyReady } : {}),
      versions: {
        of: async (jobId) => (await opts.versions.list(jobId)).map((v) => ({ version: v.version, submittedAt: v.submittedAt, spec: v.spec, source: v.source })),
        forget: (jobId) => opts.versions.forget(jobId),
      },
      usage: this.usage,
      policy: retention,
      log,
      now: this.now,
      isFenced: () => this.fenced,
    });
    if (opts.workflows) {
      this.workflows = new WorkflowRunner({
        store: opts.workflows,
        jobs: store,
        createJob: async (spec, source, digest) => (await this.admissions.fromQueue(jobIdOf(spec.namespace, spec.name), () => this.createJob(spec, source, digest, "queue held"))).job,
        killJob: (jobId) => this.killJob(jobId).then(() => undefined),
        run: (fn) => this.queue.run(fn),
        requestTick: () => this.requestTick(),
        now: this.now,
        retentionMs: retention.terminalMs,
        log: log.child({ component: "workflows" }),
      });
    }
    this.rollouts = new Rollouts({
      store,
      writer: this.writer,
      sender: this.sender,
      versions: opts.versions,
      log,
      now: this.now,
      isFenced: () => this.fenced,
      // The new version's reservation replaces the job's current one.
      admit: async (job, spec) => this.admissions.admit(job.id, spec, await opts.quotas?.current(spec.namespace), store),
    });
    this.ticks = new Tick({
      store,
      collector,
      writer: this.writer,
      sender: this.sender,
      log,
      now: this.now,
      isFenced: () => this.fenced,
      raise: (alerts) => this.raise(alerts),
      loseDisconnectedNodes: () => this.disconnected.run(),
      trimmers: [{ name: "idempotency keys", trim: (now) => opts.idempotency.trim(now) }, ...(opts.trimmers ?? [])],
      retirer: this.retirer,
      ...(opts.observer ? { observeRound: opts.observer.round.bind(opts.observer) } : {}),
      ...(opts.schedulerWorkers ? { schedulerWorkers: this.startSchedulerWorkers(opts.schedulerWorkers) } : {}),
      advanceWorkflows: async () => this.workflows?.advance(),
      stepDeployments: () => this.rollouts.run(),
      requestTick: () => this.requestTick(),
      ...(opts.reclamation?.enabled ? { reservations: this.reservations } : {}),
      ...(opts.placementStrategy ? { placementStrategy: opts.placementStrategy } : {}),
    });
    this.cron = new CronFirer({ store, queue: this.queue, writer: this.writer, log, alert, now: this.now, requestTick: () => this.requestTick() });
  }

  private startSchedulerWorkers(count: number): SchedulerWorkers {
    this.log.info({ workers: count }, "placing with scheduler workers");
    return (this.schedulerWorkers = new SchedulerWorkers(count));
  }

  get epoch(): number {
    return this.opts.epoch;
  }

  get isActive(): boolean {
    return !this.fenced;
  }

  start(): void {
    this.collector.on("node-up", this.onNodeChange);
    this.collector.on("node-changed", this.onNodeChange);
    this.timer = setInterval(() => this.requestTick(), this.opts.schedulerIntervalMs);
    this.deferredTimer = setInterval(() => {
      if (this.flushingDeferred) return;
      this.flushingDeferred = true;
      void this.flushDeferred()
        .catch((e: unknown) => this.warn("deferred writes", e))
        .finally(() => (this.flushingDeferred = false));
    }, DEFERRED_WRITE_MS / 4);
    this.requestTick();
  }

  /** Stops acting at once and for good (session lost, deposed, refused by an agent, or shutting down). */
  fence(reason: FenceReason = "shutdown"): void {
    if (this.fenced) return;
    this.fenced = true;
    if (reason !== "shutdown") this.opts.observer?.fenced(reason);
    if (this.timer) clearInterval(this.timer);
    if (this.deferredTimer) clearInterval(this.deferredTimer);
    this.cron.stop();
    void this.schedulerWorkers?.close();
    this.collector.off("node-up", this.onNodeChange);
    this.collector.off("node-changed", this.onNodeChange);
  }

  /** Resolves when queued work has drained (used by tests and shutdown). */
  async idle(): Promise<void> {
    await this.queue.idle();
    await this.admissions.idle();
  }

  requestTick(): void {
    if (this.fenced || this.tickQueued) return;
    this.tickQueued = true;
    void this.queue
      .run(async () => {
        this.tickQueued = false;
        await this.tick();
      })
      .catch((e) => {
        this.tickQueued = false;
        this.warn("tick", e);
      });
  }

  /** The scheduler's metrics for a task the last round left pending (why it was not placed). */
  /** The smallest changes to a job's request that would let its next pending instance fit now (undefined: nothing pending). */
  smallestChange(jobId: string): SmallestChange[] | undefined {
    return this.ticks.smallestChange(jobId);
  }

  pendingMetrics(taskId: string): PlacementMetrics | undefined {
    return this.ticks.pendingMetrics(taskId);
  }

  // ---------------------------------------------------------------- API writes

  async submit(spec: JobSpec, source: string, packageDigest: string | undefined): Promise<SubmitOutcome> {
    return this.admissions.submit(jobIdOf(spec.namespace, spec.name), (held) => this.createJob(spec, source, packageDigest, held));
  }

  /**
   * A submission carrying an Idempotency-Key (idempotency/keys.ts): the first
   * answer for the key is given again; the same key with another body is
   * refused. The record (with the job's id) is written before the job, so a
   * retry after this primary dies in between answers for the job it created.
   */
  async submitIdempotent(
    key: { key: string; id: string; bodyHash: string },
    spec: JobSpec,
    source: string,
    packageDigest: string | undefined,
    answerOf: (outcome: SubmitOutcome) => Record<string, unknown>,
  ): Promise<IdempotentAnswer> {
    const jobId = jobIdOf(spec.namespace, spec.name);
    return this.admissions.holdingKey(key.id, () => this.admissions.submit(jobId, async (held) => {
      const store = this.opts.idempotency;
      const now = this.now();
      const record = await store.get(key.id);
      const repeat = classifyRepeat(record, key.bodyHash, now, store.ttlMs);
      if (repeat.kind === "mismatch") throw new IdempotencyKeyReusedError(key.key);
      if (repeat.kind === "replay") return repeat.answer;
      const earlier = repeat.kind === "unanswered" ? this.store.jobs.get(repeat.jobId) : undefined;
      let outcome: SubmitOutcome;
      let createdAt = now;
      if (earlier && record && earlier.submittedAt >= record.createdAt) {
        outcome = { job: earlier, version: earlier.version ?? 0, change: "created" };
        createdAt = record.createdAt;
      } else {
        await store.put(key.id, { bodyHash: key.bodyHash, jobId, createdAt });
        outcome = await this.createJob(spec, source, packageDigest, held).catch(async (e: unknown) => {
          // A refusal (e.g. 409: the job is live) is not remembered: the key stays free for a retry.
          if (isTorcaError(e) && e.status < 500) await store.remove(key.id);
          throw e;
        });
      }
      const answer = { status: outcome.change === "unchanged" ? 200 : 201, body: answerOf(outcome) };
      await store.put(key.id, { bodyHash: key.bodyHash, jobId: outcome.job.id, createdAt, answer });
      return answer;
    }));
  }

  /**
   * A new job; for a live service of that name, a new version of it (rolled
   * out by a deployment; the same spec again changes nothing). A finished job
   * of that name is archived to the history store before it is replaced.
   * Holds the job's name; with a job of that name, the queue too (`held`).
   * Every job is created holding its name, so a name free when it was taken
   * stays free until this runs; the check below only guards that.
   */
  private async createJob(spec: JobSpec, source: string, packageDigest: string | undefined, held: QueueHeld): Promise<SubmitOutcome> {
    const id = jobIdOf(spec.namespace, spec.name);
    const existing = this.store.jobs.get(id);
    if (existing && held === "name only") throw new ConflictError(`job ${id} was created meanwhile; submit again`, { jobId: id });
    if (existing && isLive(existing, this.store.tasksOf(id))) {
      const outcome = await this.rollouts.submitVersion(existing, spec, source, packageDigest);
      this.requestTick();
      return outcome;
    }
    // Reserved until the job is stored or has failed: no other admission can spend the same remainder meanwhile.
    const release = this.admissions.admit(id, spec, await this.opts.quotas?.current(spec.namespace), this.store);
    try {
      if (existing) await this.retirer.retireNow(existing);
      const now = this.now();
      const job: Job = { id, spec, source, status: "pending", desired: "run", submittedAt: now, updatedAt: now, ...(packageDigest ? { packageDigest } : {}), ...(spec.schedule ? { cron: { runs: 0 } } : {}) };
      await this.rollouts.recordFirst(job, this.store.createJob(job));
      this.requestTick();
      return { job, version: 0, change: "created" };
    } finally {
      release();
    }
  }

  async kill(jobId: string): Promise<Job> {
    return this.queue.run(() => this.killJob(jobId));
  }

  private async killJob(jobId: string): Promise<Job> {
    const job = this.store.jobs.get(jobId);
    if (!job) throw new NotFoundError("job", jobId);
    if (job.desired !== "stop") await this.store.updateJob({ ...job, desired: "stop", updatedAt: this.now() });
    const stops = this.store.tasksOf(jobId).flatMap((t) => jobKilled(t, this.now()) ?? []);
    this.ticks.forget(stops);
    await this.putTasks(stops);
    // A service's instances leave naming first and drain (as in a rollout).
    for (const t of stops) if (t.state !== "killed") this.sender.stop(t, "job killed", drainDelayOf(job));
    this.requestTick();
    return this.store.jobs.get(jobId)!;
  }

  /** Sends a signal to a running task (`torca signal`). */
  async signal(taskId: string, signal: SignalRequest["signal"]): Promise<TaskInstance> {
    const ref = parseTaskId(taskId);
    const t = ref ? this.store.task(ref.jobId, ref.index) : undefined;
    if (!t) throw new NotFoundError("task", taskId);
    if (t.state !== "running") throw new ConflictError(`task ${taskId} is ${t.state}, not running: there is no process to signal`, { taskId });
    await this.sender.signal(t, signal);
    return t;
  }

  async drain(nodeId: string, on: boolean): Promise<void> {
    return this.queue.run(async () => {
      if (!this.collector.node(nodeId)) throw new NotFoundError("node", nodeId);
      await this.collector.setDrain(nodeId, on);
      if (on) await this.ticks.migrateOffDrainingNodes();
      this.requestTick();
    });
  }

  /** Adds an event to a task's record, durably (e.g. "exec": who ran what in it). */
  async recordTaskEvent(task: TaskInstance, type: string, message: string): Promise<void> {
    return this.queue.run(async () => {
      const t = this.store.task(task.jobId, task.index);
      if (!t) throw new NotFoundError("task", task.id);
      await this.putTasks([withEvent(t, type, message, this.now())]);
    });
  }

  /**
   * Restarts one running task the way a failed health check does: its
   * attempt is stopped, and the job's restart policy starts the next one when
   * the exit is reported (so it counts as a restart on the node).
   */
  async restartTask(taskId: string): Promise<void> {
    return this.queue.run(async () => {
      const ref = parseTaskId(taskId);
      const t = ref ? this.store.task(ref.jobId, ref.index) : undefined;
      if (!t) throw new NotFoundError("task", taskId);
      if (t.state !== "running" || t.desired !== "run") throw new ConflictError(`task ${taskId} is ${t.state}; only a running task can be restarted`);
      this.sender.stop(t, "restart requested");
    });
  }

  /** Dry run: where the job's instances would go now, or exactly why not. */
  plan(spec: JobSpec, packageDigest?: string): PlacementResult {
    return this.ticks.plan(spec, packageDigest);
  }

  /** For a live job of the spec's name: what submitting it would change. */
  planVersion(spec: JobSpec, packageDigest?: string): VersionPlan | undefined {
    const job = this.store.jobs.get(jobIdOf(spec.namespace, spec.name));
    return job && isLive(job, this.store.tasksOf(job.id)) ? this.rollouts.plan(job, spec, packageDigest) : undefined;
  }

  /** The versions of a job, newest first. */
  versions(jobId: string): Promise<JobVersion[]> {
    return this.opts.versions.list(jobId);
  }

  async revert(jobId: string, version: number): Promise<SubmitOutcome> {
    return this.queue.run(() => this.admissions.fromQueue(jobId, async () => {
      const outcome = await this.rollouts.revert(jobId, version);
      this.requestTick();
      return outcome;
    }));
  }

  async scale(jobId: string, instances: number): Promise<SubmitOutcome> {
    return this.queue.run(() => this.admissions.fromQueue(jobId, async () => {
      const outcome = await this.rollouts.scale(jobId, instances);
      this.requestTick();
      return outcome;
    }));
  }

  async restart(jobId: string, allAtOnce: boolean): Promise<Job> {
    return this.queue.run(async () => {
      const job = await this.rollouts.restart(jobId, allAtOnce);
      this.requestTick();
      return job;
    });
  }

  async deployment(jobId: string, op: DeploymentControl): Promise<Job> {
    return this.queue.run(async () => {
      const job = await this.rollouts.control(jobId, op);
      this.requestTick();
      return job;
    });
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
  async handleReport(report: AgentReport): Promise<{ recorded: string[]; disconnectGraceMs: number }> {
    this.collector.noteReport(report);
    this.raisePeerCorruptions(report);
    this.disconnected.tracker.reported(report.agentId, this.now());
    this.usage.note(report, this.now());
    this.reservations.note(report, this.now(), (taskId) => {
      const ref = parseTaskId(taskId);
      return ref && this.store.jobs.get(ref.jobId)?.spec.resources;
    });
    await this.reports.add(report);
    return { recorded: report.tasks.filter((t) => t.state === "exited").map((t) => `${t.taskId}#${t.attempt}`), disconnectGraceMs: this.opts.disconnect.graceMs };
  }

  /**
   * Reconciles a batch of reports (one per agent) in one turn of the queue.
   * Every report's records go to the store at once, so the records of one
   * chunk that several reports change (a burst of machines telling that their
   * new tasks of one job run) go in one write; the store bounds the writes in
   * flight. A report is answered (or fails) by its own records' writes alone.
   */
  private async reconcileReports(reports: AgentReport[]): Promise<PromiseSettledResult<void>[]> {
    const now = this.now();
    const opts = { presumeMissing: this.pastReconcileGrace(), missingGraceMs: this.opts.missingGraceMs };
    const decisions = reports.map((r) => reconcileReport(r, this.store, now, opts));
    for (const d of decisions) for (const s of d.stops) this.sender.stop(s.task, s.why);
    for (const d of decisions) this.writer.defer(d.observations, now);
    const results = await Promise.allSettled(decisions.map((d) => this.writeReconciled(d)));
    // Observations wait for the periodic tick: a tick after every burst of them costs more than it decides.
    if (decisions.some((d) => d.updates.length)) this.requestTick();
    return results;
  }

  /** Writes deferred observations older than DEFERRED_WRITE_MS (the chunks' own writes take the rest as they go). */
  private async flushDeferred(): Promise<void> {
    if (this.fenced || !this.opts.zookeeperWritable()) return;
    const { failed } = await this.store.flushDeferred(this.now() - DEFERRED_WRITE_MS);
    if (failed > 0) this.log.warn({ failed }, "writing deferred task observations failed; they are retried, and agents report them again");
  }

  private async writeReconciled(d: ReconcileDecision): Promise<void> {
    // A task that ended carries its usage totals into ZooKeeper: archived by whichever primary retires it.
    await this.putTasks(d.updates.map((t) => (TERMINAL_TASK_STATES.has(t.state) ? { ...t, usage: this.usage.totals(t.id) } : t)));
    this.raise(d.alerts);
    await this.writer.putThenSend(d.resends, (t) => this.sender.startRecorded(t));
  }

  /**
   * A start order failed. A certain refusal sends the task elsewhere; an order
   * that may have arrived leaves it dispatched: the agent's reports settle it,
   * and one that never mentions it gets the same attempt again after the
   * missing-task grace (reconcile.ts), so the attempt never runs twice.
   */
  private async handleDispatchFailure(t: TaskInstance, node: NodeInfo, e: unknown): Promise<void> {
    const cur = this.store.task(t.jobId, t.index);
    if (!cur || cur.attempt !== t.attempt || cur.state !== "dispatched") return;
    if (orderMayHaveArrived(e)) return;
    await this.putTasks([dispatchFailed(cur, node.id, e instanceof Error ? e.message : String(e), this.now())]);
  }

  // ---------------------------------------------------------------- nodes

  /**
   * An admin confirms a disconnected node gone: its tasks migrate now, mass
   * loss or not. A node still connected to ZooKeeper is refused (drain it).
   * Resolves with the number of tasks migrated.
   */
  async confirmLost(nodeId: string): Promise<{ tasks: number }> {
    return this.queue.run(async () => {
      const n = this.collector.node(nodeId);
      const tasks = this.disconnected.liveTasksOn(nodeId).length;
      if (!n && tasks === 0) throw new NotFoundError("node", nodeId);
      if (n && n.state !== "disconnected" && n.state !== "lost") throw new ConflictError(`node ${nodeId} is connected (${n.state}); drain it instead`, { nodeId });
      this.disconnected.tracker.confirm(nodeId, this.now());
      await this.disconnected.run();
      this.requestTick();
      return { tasks };
    });
  }

  private readonly onNodeChange = () => this.requestTick();

  // ---------------------------------------------------------------- the tick

  private async tick(): Promise<void> {
    this.cron.sync();
    await this.ticks.run();
  }

  // ---------------------------------------------------------------- helpers

  /** An agent found a peer's blob not matching its digest: the peer is suspect (its disk, or worse), one alert per peer and blob. */
  private raisePeerCorruptions(report: AgentReport): void {
    for (const c of report.peerCorruptions ?? []) {
      const node = this.collector.node(c.peer);
      const text = `Agent ${report.agentId} asked ${c.peer} (${c.url}) for package blob ${c.digest} and received content with digest ${c.actual}. The bytes were discarded and ${report.agentId} pulled from another source; check ${c.peer}'s disk (its package cache) or drain it.`;
      this.alert("package-corrupt", `package-corrupt:${c.peer}:${c.digest}`, { text, ...(node ? { node } : {}) });
    }
  }

  private raise(alerts: readonly LifecycleAlert[], node?: NodeInfo): void {
    for (const a of alerts) this.alert(a.kind, a.key, { job: a.job, task: a.task, text: a.text, ...(node ? { node } : {}) });
  }

  private pastReconcileGrace(): boolean {
    return this.now() - this.startedAt >= this.opts.reconcileGraceMs;
  }

  private warn(what: string, e: unknown): void {
    if (!this.fenced) this.log.warn({ err: e }, `${what} failed`);
  }

  private putTasks(tasks: TaskInstance[]): Promise<void> {
    return this.writer.put(tasks);
  }
}

/** The store's task writes, each reported to `observer` with the record it replaced. */
function observedTasks(store: ZkStateStore, observer: PrimaryObserver): TaskStore {
  return {
    async putTask(t) {
      const prev = store.task(t.jobId, t.index);
      await store.putTask(t);
      observer.taskWritten(prev, t);
    },
    deferTask(t, now) {
      const prev = store.task(t.jobId, t.index);
      store.deferTask(t, now);
      observer.taskWritten(prev, t);
    },
  };
}
