import { randomBytes } from "node:crypto";
import { systemClock, type Clock, type TimerHandle } from "../common/clock.js";
import { createLogger, type Logger } from "../common/logger.js";
import { withDefaults } from "../common/options.js";
import type { AlertLedger } from "./ledger.js";
import { formatAlert, formatStormSummary } from "./message.js";
import { AlertPolicy, retryDelay, type PolicyConfig, type StormSummary } from "./policy.js";
import { resolveTargets, targetKey, type ClusterRoute, type Target } from "./router.js";
import type { AlertEvent, AlertMessage, Channel, DeliveryRecord, Notifier } from "./types.js";

export interface RetryConfig {
  /** Total delivery attempts per message, the first included. */
  attempts: number;
  initialDelayMs: number;
  factor: number;
  maxDelayMs: number;
}

const DEFAULTS = Object.freeze({
  retry: Object.freeze({ attempts: 6, initialDelayMs: 5_000, factor: 2, maxDelayMs: 5 * 60_000 }),
  /** Unfinished deliveries older than this are not resumed by a new primary: the news is stale. */
  resumeMaxAgeMs: 60 * 60_000,
});

export interface AlerterOptions {
  ledger: AlertLedger;
  /** At most one per channel. The Alerter owns them: close() closes them. */
  notifiers: Notifier[];
  routes?: ClusterRoute[];
  policy?: Partial<PolicyConfig>;
  retry?: Partial<RetryConfig>;
  clock?: Clock;
  logger?: Logger;
  /** Called after every change of a delivery record (e.g. to publish it on /v1/events). */
  onDelivery?: (record: DeliveryRecord) => void;
  /** Tag in record ids, so managers sharing a ledger never collide. Default: random. */
  instanceId?: string;
  resumeMaxAgeMs?: number;
}

export type RaiseResult =
  | { status: "queued"; deliveries: DeliveryRecord[] }
  /** Same key seen within the dedup window of this process. */
  | { status: "duplicate" }
  /** The durable claim is held already (alerted before, possibly by another primary). */
  | { status: "already-claimed" }
  | { status: "no-recipients" }
  | { status: "closed" };

/**
 * From an event to delivered messages: dedup → route → claim → policy →
 * deliveries, each retried with exponential backoff, every state change
 * recorded in the ledger. See README.md for the guarantees.
 */
export class Alerter {
  private readonly ledger: AlertLedger;
  private readonly notifiers = new Map<Channel, Notifier>();
  private readonly routes: ClusterRoute[];
  private readonly policy: AlertPolicy;
  private readonly retry: RetryConfig;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly instanceId: string;
  private readonly resumeMaxAgeMs: number;
  private seq = 0;
  private closed = false;
  private readonly inflight = new Set<Promise<void>>();
  private readonly retryTimers = new Map<string, TimerHandle>();
  /** Records this process is delivering (so resume() does not take them twice). */
  private readonly active = new Set<string>();
  private summaryTimer: { handle: TimerHandle; at: number } | undefined;
  /** Recipient key → target, for turning a storm summary back into an address. */
  private readonly targets = new Map<string, Target>();
  /** Per-record write chain: updates of one record reach the ledger in order. */
  private readonly writes = new Map<string, Promise<void>>();

  constructor(private readonly opts: AlerterOptions) {
    this.ledger = opts.ledger;
    for (const n of opts.notifiers) this.notifiers.set(n.channel, n);
    this.routes = opts.routes ?? [];
    this.policy = new AlertPolicy(opts.policy);
    this.retry = withDefaults(DEFAULTS.retry, opts.retry ?? {});
    this.clock = opts.clock ?? systemClock();
    this.log = opts.logger ?? createLogger("alerting");
    this.instanceId = opts.instanceId ?? randomBytes(3).toString("hex");
    this.resumeMaxAgeMs = opts.resumeMaxAgeMs ?? DEFAULTS.resumeMaxAgeMs;
  }

  async raise(event: AlertEvent): Promise<RaiseResult> {
    if (this.closed) return { status: "closed" };
    const now = this.clock.now();
    if (!this.policy.firstSighting(event.key, now)) return { status: "duplicate" };
    const targets = resolveTargets(event.kind, event.recipients, this.routes);
    // Routing before claiming: most events concern jobs without `notify`, and those cost no ledger write.
    if (targets.length === 0) return { status: "no-recipients" };
    if (!(await this.ledger.claim(event.key))) return { status: "already-claimed" };
    if (this.closed) return { status: "closed" };

    const message = formatAlert(event);
    const deliveries: DeliveryRecord[] = [];
    for (const t of targets) {
      const rk = targetKey(t);
      this.targets.set(rk, t);
      const admission = this.policy.admit(rk, event, this.clock.now());
      const rec = this.newRecord({ key: event.key, kind: event.kind, severity: event.severity, channel: t.channel, to: t.to, message });
      if (admission.action === "hold") {
        rec.status = admission.reason === "storm" ? "collapsed" : "suppressed";
        rec.lastError = admission.reason === "storm" ? "held by storm collapsing; reported in the window's summary" : "rate limit; reported in the window's summary";
        this.persist(rec);
      } else {
        this.persist(rec);
        this.startAttempt(rec);
      }
      deliveries.push(rec);
    }
    this.armSummaryTimer();
    return { status: "queued", deliveries: deliveries.map((d) => structuredClone(d)) };
  }

  /** Delivery history for `GET /v1/alerts`, newest first, as plain JSON. */
  async history(limit = 100): Promise<DeliveryRecord[]> {
    return this.ledger.list(limit);
  }

  /**
   * Picks up deliveries a previous primary left pending or retrying (call on
   * becoming primary). Ones older than resumeMaxAgeMs are marked failed.
   * Returns how many were resumed.
   */
  async resume(scanLimit = 1000): Promise<number> {
    const now = this.clock.now();
    let resumed = 0;
    for (const rec of await this.ledger.list(scanLimit)) {
      if ((rec.status !== "pending" && rec.status !== "retrying") || this.active.has(rec.id) || this.closed) continue;
      if (now - rec.createdAt > this.resumeMaxAgeMs || rec.attempts >= this.retry.attempts) {
        this.persist({ ...rec, status: "failed", updatedAt: now, nextAttemptAt: undefined, lastError: `${rec.lastError ?? "interrupted"}; not resumed after failover` });
        continue;
      }
      resumed++;
      this.scheduleAttempt(rec, Math.max(0, (rec.nextAttemptAt ?? now) - now));
    }
    return resumed;
  }

  /** Resolves once no send or ledger write is in progress (timers may still be armed). */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000 && (this.inflight.size > 0 || this.writes.size > 0); i++) {
      await Promise.allSettled([...this.inflight, ...this.writes.values()]);
    }
  }

  /** Stops all timers, waits for sends in progress, closes the notifiers. Unfinished deliveries stay in the ledger for resume(). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.retryTimers.values()) this.clock.clearTimer(h);
    this.retryTimers.clear();
    if (this.summaryTimer) this.clock.clearTimer(this.summaryTimer.handle);
    this.summaryTimer = undefined;
    await this.idle();
    for (const n of this.notifiers.values()) await n.close?.();
  }

  private newRecord(r: Pick<DeliveryRecord, "key" | "kind" | "severity" | "channel" | "to" | "message"> & { collapsedCount?: number }): DeliveryRecord {
    const now = this.clock.now();
    const id = `${String(now).padStart(15, "0")}-${String(++this.seq).padStart(6, "0")}-${this.instanceId}`;
    return { id, ...r, status: "pending", attempts: 0, createdAt: now, updatedAt: now };
  }

  private startAttempt(rec: DeliveryRecord): void {
    this.active.add(rec.id);
    this.track(this.attempt(rec));
  }

  private scheduleAttempt(rec: DeliveryRecord, delayMs: number): void {
    this.active.add(rec.id);
    const h = this.clock.setTimer(() => {
      this.retryTimers.delete(rec.id);
      if (!this.closed) this.track(this.attempt(rec));
    }, delayMs);
    this.retryTimers.set(rec.id, h);
  }

  private async attempt(rec: DeliveryRecord): Promise<void> {
    const notifier = this.notifiers.get(rec.channel);
    rec.attempts++;
    rec.status = "pending";
    rec.nextAttemptAt = undefined;
    rec.updatedAt = this.clock.now();
    if (!notifier) {
      rec.status = "failed";
      rec.lastError = `no ${rec.channel} notifier configured`;
      this.finish(rec);
      return;
    }
    try {
      await notifier.send(rec.to, rec.message);
      rec.status = "sent";
      rec.sentAt = this.clock.now();
      rec.updatedAt = rec.sentAt;
      rec.lastError = undefined;
      this.finish(rec);
    } catch (e) {
      rec.lastError = e instanceof Error ? e.message : String(e);
      rec.updatedAt = this.clock.now();
      if (rec.attempts >= this.retry.attempts || this.closed) {
        // On close the record stays "retrying" so the next primary resumes it.
        rec.status = this.closed && rec.attempts < this.retry.attempts ? "retrying" : "failed";
        this.log.warn({ alert: rec.key, channel: rec.channel, attempts: rec.attempts, err: e }, "alert delivery failed");
        this.finish(rec);
        return;
      }
      const delay = retryDelay(rec.attempts, this.retry);
      rec.status = "retrying";
      rec.nextAttemptAt = rec.updatedAt + delay;
      this.persist(rec);
      this.scheduleAttempt(rec, delay);
    }
  }

  private finish(rec: DeliveryRecord): void {
    this.active.delete(rec.id);
    this.persist(rec);
  }

  private persist(rec: DeliveryRecord): void {
    // Through JSON: the ledger and the history see plain JSON (no undefined-valued keys).
    const snapshot = JSON.parse(JSON.stringify(rec)) as DeliveryRecord;
    const prev = this.writes.get(rec.id) ?? Promise.resolve();
    const next = prev
      .then(() => this.ledger.record(snapshot))
      .then(
        () => this.opts.onDelivery?.(snapshot),
        (e: unknown) => this.log.error({ err: e, alert: rec.key, delivery: rec.id }, "could not record alert delivery"),
      )
      .finally(() => {
        if (this.writes.get(rec.id) === next) this.writes.delete(rec.id);
      });
    this.writes.set(rec.id, next);
  }

  private track(p: Promise<void>): void {
    const q = p.catch((e: unknown) => this.log.error({ err: e }, "alert delivery crashed")).finally(() => this.inflight.delete(q));
    this.inflight.add(q);
  }

  private armSummaryTimer(): void {
    const due = this.policy.nextDeadline();
    if (due === undefined || this.closed) return;
    if (this.summaryTimer && this.summaryTimer.at <= due) return;
    if (this.summaryTimer) this.clock.clearTimer(this.summaryTimer.handle);
    const handle = this.clock.setTimer(() => {
      this.summaryTimer = undefined;
      if (this.closed) return;
      for (const s of this.policy.takeDueSummaries(this.clock.now())) this.sendSummary(s);
      this.armSummaryTimer();
    }, Math.max(0, due - this.clock.now()));
    this.summaryTimer = { handle, at: due };
  }

  private sendSummary(s: StormSummary): void {
    const t = this.targets.get(s.recipient);
    if (!t) return;
    const message: AlertMessage = formatStormSummary(s);
    const rec = this.newRecord({ key: `summary:${s.recipient}:${s.windowStart}`, kind: "storm-summary", severity: s.severity, channel: t.channel, to: t.to, message, collapsedCount: s.count });
    this.persist(rec);
    this.startAttempt(rec);
  }
}
