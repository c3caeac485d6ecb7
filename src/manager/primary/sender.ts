import { ConflictError, errorFromWire, StaleEpochError, type WireError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { MAX_DISPATCH_BATCH, type SignalRequest, type TaskDispatch } from "../../common/protocol.js";
import type { Job, NodeInfo, TaskInstance } from "../../common/types.js";
import type { Dispatcher } from "../dispatcher/dispatcher.js";

export interface SenderOptions {
  epoch: number;
  stopGraceMs: number;
  now: () => number;
  isFenced: () => boolean;
  /** An agent refused our epoch: a newer primary exists. */
  fence: () => void;
  node: (id: string) => NodeInfo | undefined;
  job: (id: string) => Job | undefined;
  /** The agent could not be reached to start `t`. */
  onDispatchFailed: (t: TaskInstance, node: NodeInfo, error: unknown) => void;
}

/** The same stop is sent to a node at most this often. */
const STOP_RESEND_MS = 5000;

/** A start order waiting for its node's next request. */
interface QueuedStart {
  task: TaskInstance;
  node: NodeInfo;
  dispatch: TaskDispatch;
}

/**
 * Tells agents to start and stop tasks. Every message carries the epoch; a
 * fenced primary sends nothing, and a refusal for a stale epoch fences it.
 *
 * Start orders are collected per node and sent together: whatever `start` is
 * given in one turn of the event loop (a round's records landing chunk by
 * chunk) goes to each node in one request, so a round costs one request per
 * node rather than one per task, and no order waits for a later chunk.
 */
export class TaskSender {
  private readonly lastStopSent = new Map<string, number>();
  /** Start orders by node URL, sent on the next turn of the event loop. */
  private readonly queued = new Map<string, QueuedStart[]>();
  private flushing?: NodeJS.Immediate;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly opts: SenderOptions,
    private readonly log: Logger,
  ) {}

  /** Queues a start order for its node's next request; call only once `t` (with its new attempt) is durable. */
  start(t: TaskInstance, job: Job, node: NodeInfo): void {
    if (this.opts.isFenced()) return;
    const dispatch: TaskDispatch = { epoch: this.opts.epoch, taskId: t.id, jobId: t.jobId, index: t.index, attempt: t.attempt, incarnation: t.createdAt, spec: job.spec, ...(job.packageDigest ? { packageDigest: job.packageDigest } : {}), ...(t.reclaimed ? { reclaimed: true } : {}), ...(t.devices ? { devices: t.devices } : {}) };
    const forNode = this.queued.get(node.url);
    if (forNode) forNode.push({ task: t, node, dispatch });
    else this.queued.set(node.url, [{ task: t, node, dispatch }]);
    this.flushing ??= setImmediate(() => this.flush());
  }

  /** Queues the start order of a durable dispatched record to its node (nothing when its job or node is gone). */
  startRecorded(t: TaskInstance): void {
    const job = this.opts.job(t.jobId);
    const node = t.nodeId ? this.opts.node(t.nodeId) : undefined;
    if (job && node) this.start(t, job, node);
  }

  /** Sends every queued start order: one request per node (split past MAX_DISPATCH_BATCH). */
  private flush(): void {
    this.flushing = undefined;
    const queued = [...this.queued.values()];
    this.queued.clear();
    if (this.opts.isFenced()) return;
    for (const starts of queued) {
      for (let i = 0; i < starts.length; i += MAX_DISPATCH_BATCH) void this.send(starts.slice(i, i + MAX_DISPATCH_BATCH));
    }
  }

  private async send(starts: QueuedStart[]): Promise<void> {
    const node = starts[0]!.node;
    /** Per order: why it was not started (undefined: it was). */
    let errors: unknown[];
    try {
      const results = await this.dispatcher.start(node.url, starts.map((s) => s.dispatch));
      // The agent's refusal, rebuilt as its class (a StaleEpochError stays one).
      errors = results.map((r, i) => r.error && errorFromWire(r.error as WireError, r.error.status, { taskId: starts[i]!.task.id }));
    } catch (e) {
      errors = starts.map(() => e);
    }
    errors.forEach((e, i) => {
      if (e === undefined) return;
      const { task } = starts[i]!;
      if (isStaleEpoch(e)) {
        if (this.opts.isFenced()) return;
        this.log.error({ node: node.id }, "agent refused our epoch: a newer primary exists; fencing");
        this.opts.fence();
        return;
      }
      this.warn(`dispatch ${task.id} to ${node.id}`, e);
      this.opts.onDispatchFailed(task, node, e);
    });
  }

  /**
   * Sends a stop order for attempt `t.attempt` on `t.nodeId`, at most once per
   * STOP_RESEND_MS; with `drainMs` the agent unpublishes the task and waits
   * that long before stopping it.
   */
  stop(t: Pick<TaskInstance, "id" | "attempt" | "nodeId">, why = "stop", drainMs = 0): void {
    if (this.opts.isFenced() || !t.nodeId) return;
    const node = this.opts.node(t.nodeId);
    if (!node || node.state === "lost") return;
    const key = `${t.id}#${t.attempt}@${t.nodeId}`;
    const now = this.opts.now();
    if (now - (this.lastStopSent.get(key) ?? 0) < STOP_RESEND_MS) return;
    this.lastStopSent.set(key, now);
    this.log.info({ task: t.id, attempt: t.attempt, node: t.nodeId, why, ...(drainMs ? { drainMs } : {}) }, "stopping task");
    this.dispatcher.stop(node.url, t.id, { epoch: this.opts.epoch, attempt: t.attempt, graceMs: this.opts.stopGraceMs, ...(drainMs ? { drainMs } : {}) }).catch((e: unknown) => {
      if (isStaleEpoch(e)) this.opts.fence();
      else this.warn(`stop ${t.id}`, e);
    });
  }

  /** Sends a signal to the task's current attempt on its node (`torca signal`); rejects when the agent refuses. */
  async signal(t: TaskInstance, signal: SignalRequest["signal"]): Promise<void> {
    const node = t.nodeId ? this.opts.node(t.nodeId) : undefined;
    if (this.opts.isFenced() || !node) throw new ConflictError(`task ${t.id} is not on a reachable node`, { taskId: t.id });
    try {
      await this.dispatcher.signal(node.url, t.id, { epoch: this.opts.epoch, attempt: t.attempt, signal });
    } catch (e) {
      if (isStaleEpoch(e)) this.opts.fence();
      throw e;
    }
  }

  /** Level-triggered: every task that should stop is told again (rate-limited). */
  resendStops(tasks: Iterable<TaskInstance>, drainOf: (t: TaskInstance) => number = () => 0): void {
    for (const t of tasks) this.stop(t, "stop", drainOf(t));
    if (this.lastStopSent.size > 10_000) this.lastStopSent.clear();
  }

  private warn(what: string, e: unknown): void {
    if (!this.opts.isFenced()) this.log.warn({ err: e }, `${what} failed`);
  }
}

function isStaleEpoch(e: unknown): boolean {
  return e instanceof StaleEpochError;
}
