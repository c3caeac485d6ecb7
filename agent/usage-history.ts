import { cpus } from "node:os";

/**
 * A short usage history per task and for the machine, for the pages' graphs:
 * one sample per report interval, in ring buffers of a fixed length (the last
 * `windowMs`), so memory stays bounded however long the agent runs. The
 * samples come from the cgroup readings the runner already takes before each
 * full report (TaskRunner.refreshUsage); nothing is read twice.
 *
 * CPU is cumulative in the cgroup; a sample holds the cores used on average
 * since the previous reading (for a task's first reading: since it started).
 */

export interface UsageSample {
  /** When the reading was taken (ms since the epoch). */
  at: number;
  /** Cores used on average since the previous sample. */
  cpu: number;
  /** Memory in use at `at`, bytes. */
  memory: number;
}

/** A cumulative reading: CPU time so far and memory now. */
export interface UsageReading {
  cpuNs: number;
  memoryBytes: number;
}

/** A fixed-size ring of the newest `capacity` items. */
export class Ring<T> {
  private readonly items: T[] = [];
  private start = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity ${capacity}`);
  }

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }

  get size(): number {
    return this.items.length;
  }

  /** The newest item, without copying the ring. */
  last(): T | undefined {
    if (this.items.length === 0) return undefined;
    return this.items[(this.start + this.items.length - 1) % this.items.length];
  }
}

interface Series {
  attempt: number;
  samples: Ring<UsageSample>;
  last?: { at: number; cpuNs: number };
}

/** Ring length for a window: one sample per interval, at least 2 and at most 2,000 (bounds memory when the interval is tiny). */
export function samplesFor(windowMs: number, intervalMs: number): number {
  return Math.min(2000, Math.max(2, Math.ceil(windowMs / Math.max(1, intervalMs))));
}

export const HISTORY_WINDOW_MS = 30 * 60_000;

export class UsageHistory {
  private readonly tasks = new Map<string, Series>();
  private readonly machineSeries: Series = { attempt: 0, samples: new Ring(1) };
  readonly capacity: number;

  constructor(readonly intervalMs: number, windowMs = HISTORY_WINDOW_MS) {
    this.capacity = samplesFor(windowMs, intervalMs);
    this.machineSeries.samples = new Ring(this.capacity);
  }

  /** One reading of a running task's attempt; a newer attempt starts a new series. */
  recordTask(taskId: string, attempt: number, at: number, reading: UsageReading, startedAt?: number): void {
    let s = this.tasks.get(taskId);
    if (!s || s.attempt !== attempt) this.tasks.set(taskId, (s = { attempt, samples: new Ring(this.capacity), ...(startedAt !== undefined ? { last: { at: startedAt, cpuNs: 0 } } : {}) }));
    add(s, at, reading);
  }

  /** One reading of the whole machine. */
  recordMachine(at: number, reading: UsageReading): void {
    add(this.machineSeries, at, reading);
  }

  /** Forgets tasks the agent no longer holds (their records were pruned). */
  retain(taskIds: ReadonlySet<string>): void {
    for (const id of this.tasks.keys()) if (!taskIds.has(id)) this.tasks.delete(id);
  }

  task(taskId: string): { attempt: number; samples: UsageSample[] } | undefined {
    const s = this.tasks.get(taskId);
    return s ? { attempt: s.attempt, samples: s.samples.toArray() } : undefined;
  }

  /** The newest sample of a task's current series (what enforcement reads every interval: no copy). */
  latestOf(taskId: string): { attempt: number; sample: UsageSample } | undefined {
    const s = this.tasks.get(taskId);
    const sample = s?.samples.last();
    return s && sample ? { attempt: s.attempt, sample } : undefined;
  }

  machine(): UsageSample[] {
    return this.machineSeries.samples.toArray();
  }
}

function add(s: Series, at: number, r: UsageReading): void {
  const prev = s.last;
  s.last = { at, cpuNs: r.cpuNs };
  // Without an earlier reading the rate is unknown: the reading only sets the baseline.
  if (!prev || at <= prev.at) return;
  const cpu = Math.max(0, r.cpuNs - prev.cpuNs) / ((at - prev.at) * 1e6);
  s.samples.push({ at, cpu, memory: r.memoryBytes });
}

/** The machine's CPU time so far over all cores (busy time: user, nice, system, irq), in ns. */
export function machineCpuNs(): number {
  let ms = 0;
  for (const c of cpus()) ms += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return ms * 1e6;
}
