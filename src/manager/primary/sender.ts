import { ConflictError, StaleEpochError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { SignalRequest, TaskDispatch } from "../../common/protocol.js";
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
  /** The agent could not be reached to start `t`. */
  onDispatchFailed: (t: TaskInstance, node: NodeInfo, error: unknown) => void;
}

/** The same stop is sent to a node at most this often. */
const STOP_RESEND_MS = 5000;

/**
 * Tells agents to start and stop tasks. Every message carries the epoch; a
 * fenced primary sends nothing, and a refusal for a stale epoch fences it.
 */
export class TaskSender {
  private readonly lastStopSent = new Map<string, number>();

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly opts: SenderOptions,
    private readonly log: Logger,
  ) {}

  /** Sends a start order; call only once `t` (with its new attempt) is durable. */
  start(t: TaskInstance, job: Job, node: NodeInfo): void {
    if (this.opts.isFenced()) return;
    const d: TaskDispatch = { epoch: this.opts.epoch, taskId: t.id, jobId: t.jobId, index: t.index, attempt: t.attempt, spec: job.spec, ...(job.packageDigest ? { packageDigest: job.packageDigest } : {}), ...(t.reclaimed ? { reclaimed: true } : {}), ...(t.devices ? { devices: t.devices } : {}) };
    this.dispatcher.start(node.url, d).catch((e: unknown) => {
      if (isStaleEpoch(e)) {
        this.log.error({ node: node.id }, "agent refused our epoch: a newer primary exists; fencing");
        this.opts.fence();
        return;
      }
      this.warn(`dispatch ${t.id} to ${node.id}`, e);
      this.opts.onDispatchFailed(t, node, e);
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
