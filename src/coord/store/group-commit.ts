/**
 * Group commit: changes submitted for one key (a chunk znode) while a write
 * of that key is in flight, or queued behind the limit of writes in flight,
 * wait and go together in its next write. Each submission resolves when the
 * write that carried it succeeded and rejects with that write's error, so a
 * caller learns exactly what it would from a write of its own.
 *
 * Invariants: at most one write per key in flight, so the writes of a key
 * are applied in the order submitted; at most `maxInFlight` writes in flight
 * over all keys.
 */
export class GroupCommitter<Op> {
  private readonly queues = new Map<string, Queue<Op>>();
  private readonly ready: string[] = [];
  private inFlight = 0;

  constructor(
    private readonly write: (key: string, ops: readonly Op[]) => Promise<void>,
    private readonly maxInFlight: number,
  ) {}

  /** Whether a write of `key` is queued or in flight: a change submitted now goes in a write that has not started or in the next one. */
  busy(key: string): boolean {
    return this.queues.has(key);
  }

  submit(key: string, op: Op): Promise<void> {
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = { ops: [], waiters: [], writing: false, isReady: false }));
    q.ops.push(op);
    const done = new Promise<void>((resolve, reject) => q.waiters.push({ resolve, reject }));
    if (!q.writing && !q.isReady) {
      q.isReady = true;
      // Started after the current synchronous run, so the submissions made in one loop go in one write.
      queueMicrotask(() => {
        this.ready.push(key);
        this.pump();
      });
    }
    return done;
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight) {
      const key = this.ready.shift();
      if (key === undefined) return;
      const q = this.queues.get(key);
      if (!q) continue;
      this.start(key, q);
    }
  }

  private start(key: string, q: Queue<Op>): void {
    const { ops, waiters } = q;
    q.ops = [];
    q.waiters = [];
    q.isReady = false;
    q.writing = true;
    this.inFlight++;
    // A throw inside write() rejects the same way as a failed write.
    void Promise.resolve()
      .then(() => this.write(key, ops))
      .then(
        () => {
          for (const w of waiters) w.resolve();
        },
        (e: unknown) => {
          for (const w of waiters) w.reject(e);
        },
      )
      .finally(() => {
        this.inFlight--;
        q.writing = false;
        if (q.ops.length > 0) {
          q.isReady = true;
          this.ready.push(key);
        } else {
          this.queues.delete(key);
        }
        this.pump();
      });
  }
}

interface Queue<Op> {
  ops: Op[];
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
  writing: boolean;
  /** In the ready list (or about to be): a later submission joins it. */
  isReady: boolean;
}
