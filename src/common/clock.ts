/** Time and timers behind an interface, so timing logic (alert retries and storms, daemon restarts) is tested without sleeping. */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export interface TimerHandle {
  readonly id: number;
}

/**
 * Real time. Timers are unref'd, so a pending timer never keeps a process
 * alive on its own, unless `keepAlive` (a restart the master has scheduled must).
 */
export function systemClock(opts: { keepAlive?: boolean } = {}): Clock {
  let seq = 0;
  const live = new Map<number, NodeJS.Timeout>();
  return {
    now: () => Date.now(),
    setTimer(fn, ms) {
      const id = ++seq;
      const t = setTimeout(() => {
        live.delete(id);
        fn();
      }, Math.max(0, ms));
      if (!opts.keepAlive) t.unref();
      live.set(id, t);
      return { id };
    },
    clearTimer(h) {
      const t = live.get(h.id);
      if (t) clearTimeout(t);
      live.delete(h.id);
    },
  };
}

/**
 * A clock that moves only when told to. `advance(ms)` fires due timers in time
 * order, each seeing `now()` equal to its due time.
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { id };
  }

  clearTimer(h: TimerHandle): void {
    this.timers.delete(h.id);
  }

  /** Number of timers not yet fired or cleared. */
  pending(): number {
    return this.timers.size;
  }

  /** Due time of the earliest pending timer. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const { at } of this.timers.values()) if (min === undefined || at < min) min = at;
    return min;
  }

  advance(ms: number): void {
    const end = this.t + ms;
    // Bounded: every iteration removes one timer; timers created while firing
    // are picked up only if they fall inside the advanced span.
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}
