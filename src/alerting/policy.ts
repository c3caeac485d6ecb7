import { withDefaults } from "../common/options.js";
import type { AlertKind, AlertSeverity } from "./types.js";

/**
 * Delivery policy, pure: every decision takes `now` from the caller, so the
 * whole thing is tested with plain numbers.
 *
 * - dedup: an incident key seen within `dedupWindowMs` is dropped before it
 *   costs a ledger round trip (the ledger claim is the durable dedup).
 * - rate limit: a token bucket per recipient (`capacity` messages, refilled
 *   evenly over `refillMs`).
 * - storm collapsing: per recipient, a window opens at the first alert; past
 *   `threshold` alerts in it, the rest are held and one summary goes out when
 *   the window ends.
 * Alerts refused by the bucket are also reported in that window's summary, so
 * that nothing disappears without the recipient being told it happened.
 * Summaries skip the bucket: there is at most one per recipient per window.
 */
export interface PolicyConfig {
  dedupWindowMs: number;
  rateLimit: { capacity: number; refillMs: number };
  storm: { threshold: number; windowMs: number };
}

const DEFAULTS = Object.freeze({
  dedupWindowMs: 60 * 60_000,
  rateLimit: Object.freeze({ capacity: 10, refillMs: 10 * 60_000 }),
  storm: Object.freeze({ threshold: 20, windowMs: 60_000 }),
});

export type Admission = { action: "send" } | { action: "hold"; reason: "storm" | "rate-limit" };

export interface AlertBrief {
  kind: AlertKind;
  severity: AlertSeverity;
  subject: string;
}

export interface StormSummary {
  /** The recipient key given to admit(). */
  recipient: string;
  windowStart: number;
  windowMs: number;
  /** Alerts held in the window (collapsed by the storm rule or refused by the rate limit). */
  count: number;
  byKind: Partial<Record<AlertKind, number>>;
  /** Highest severity among the held alerts. */
  severity: AlertSeverity;
  /** Subjects of the first few held alerts. */
  samples: string[];
}

const SAMPLE_LIMIT = 5;
const SEVERITY_RANK: Record<AlertSeverity, number> = { info: 0, warning: 1, critical: 2 };

interface Bucket {
  tokens: number;
  at: number;
}

interface StormWindow {
  start: number;
  seen: number;
  held: number;
  byKind: Partial<Record<AlertKind, number>>;
  severity: AlertSeverity;
  samples: string[];
}

export class AlertPolicy {
  readonly config: PolicyConfig;
  /** key → first seen; insertion order is time order, so expiry pops from the front. */
  private readonly seenKeys = new Map<string, number>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly windows = new Map<string, StormWindow>();
  /** Summaries of windows that expired while admitting, waiting for takeDueSummaries(). */
  private readonly ready: StormSummary[] = [];
  private calls = 0;

  constructor(config: Partial<PolicyConfig> = {}) {
    this.config = {
      dedupWindowMs: config.dedupWindowMs ?? DEFAULTS.dedupWindowMs,
      rateLimit: withDefaults(DEFAULTS.rateLimit, config.rateLimit ?? {}),
      storm: withDefaults(DEFAULTS.storm, config.storm ?? {}),
    };
  }

  /** True the first time a key is seen within the dedup window; false for repeats. */
  firstSighting(key: string, now: number): boolean {
    for (const [k, at] of this.seenKeys) {
      if (now - at < this.config.dedupWindowMs) break;
      this.seenKeys.delete(k);
    }
    const at = this.seenKeys.get(key);
    if (at !== undefined && now - at < this.config.dedupWindowMs) return false;
    this.seenKeys.delete(key);
    this.seenKeys.set(key, now);
    return true;
  }

  /** Decides one alert for one recipient; counts it against the recipient's window and bucket. */
  admit(recipient: string, alert: AlertBrief, now: number): Admission {
    if (++this.calls % 256 === 0) this.sweep(now);
    const w = this.windowFor(recipient, now);
    w.seen++;
    if (w.seen > this.config.storm.threshold) {
      this.hold(w, alert);
      return { action: "hold", reason: "storm" };
    }
    if (!this.takeToken(recipient, now)) {
      this.hold(w, alert);
      return { action: "hold", reason: "rate-limit" };
    }
    return { action: "send" };
  }

  /** Summaries for windows that have ended by `now` and held something. */
  takeDueSummaries(now: number): StormSummary[] {
    const out = this.ready.splice(0);
    for (const [recipient, w] of this.windows) {
      if (now < w.start + this.config.storm.windowMs) continue;
      this.windows.delete(recipient);
      if (w.held > 0) out.push(this.summaryOf(recipient, w));
    }
    return out;
  }

  /** When takeDueSummaries() next has something to return; undefined when nothing is held. */
  nextDeadline(): number | undefined {
    if (this.ready.length > 0) return this.ready[0]!.windowStart + this.ready[0]!.windowMs;
    let min: number | undefined;
    for (const w of this.windows.values()) {
      if (w.held === 0) continue;
      const end = w.start + this.config.storm.windowMs;
      if (min === undefined || end < min) min = end;
    }
    return min;
  }

  private windowFor(recipient: string, now: number): StormWindow {
    const cur = this.windows.get(recipient);
    if (cur && now < cur.start + this.config.storm.windowMs) return cur;
    if (cur && cur.held > 0) this.ready.push(this.summaryOf(recipient, cur));
    const w: StormWindow = { start: now, seen: 0, held: 0, byKind: {}, severity: "info", samples: [] };
    this.windows.set(recipient, w);
    return w;
  }

  private hold(w: StormWindow, alert: AlertBrief): void {
    w.held++;
    w.byKind[alert.kind] = (w.byKind[alert.kind] ?? 0) + 1;
    if (SEVERITY_RANK[alert.severity] > SEVERITY_RANK[w.severity]) w.severity = alert.severity;
    if (w.samples.length < SAMPLE_LIMIT) w.samples.push(alert.subject);
  }

  private takeToken(recipient: string, now: number): boolean {
    const { capacity, refillMs } = this.config.rateLimit;
    const b = this.buckets.get(recipient) ?? { tokens: capacity, at: now };
    b.tokens = Math.min(capacity, b.tokens + ((now - b.at) * capacity) / refillMs);
    b.at = now;
    this.buckets.set(recipient, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private summaryOf(recipient: string, w: StormWindow): StormSummary {
    return { recipient, windowStart: w.start, windowMs: this.config.storm.windowMs, count: w.held, byKind: { ...w.byKind }, severity: w.severity, samples: [...w.samples] };
  }

  /** Forgets buckets that have refilled completely and empty windows that ended: bounded memory. */
  private sweep(now: number): void {
    const { refillMs } = this.config.rateLimit;
    for (const [r, b] of this.buckets) if (now - b.at >= refillMs) this.buckets.delete(r);
    for (const [r, w] of this.windows) if (w.held === 0 && now >= w.start + this.config.storm.windowMs) this.windows.delete(r);
  }
}

/** Kind counts as "20 node-lost, 7 task-lost": largest first, ties by name. */
export function describeKindCounts(byKind: Partial<Record<AlertKind, number>>): string {
  return (Object.entries(byKind) as [AlertKind, number][])
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, n]) => `${n} ${k}`)
    .join(", ");
}

/** Delay before retry number `attempt` (1 = first retry): initial·factor^(attempt-1), capped. */
export function retryDelay(attempt: number, cfg: { initialDelayMs: number; factor: number; maxDelayMs: number }): number {
  return Math.min(cfg.maxDelayMs, cfg.initialDelayMs * cfg.factor ** Math.max(0, attempt - 1));
}
