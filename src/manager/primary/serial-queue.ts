import { ConflictError, TorcaError } from "../../common/errors.js";

/**
 * Runs the primary's mutations one at a time, so the in-memory copy and
 * ZooKeeper never disagree about order. Once fenced, queued work is refused.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly isFenced: () => boolean,
    /** A version conflict means our copy was behind (the store reloads it): the next round works from fresh data. */
    private readonly onConflict: () => void,
  ) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => {
      if (this.isFenced()) throw new TorcaError("not_primary", "this manager is no longer the primary", { status: 503 });
      return fn();
    });
    this.tail = run.catch(() => undefined);
    // Fencing itself needs no help here: a deposed primary's session is
    // expired, so ZooKeeper refuses all its writes.
    return run.catch((e: unknown) => {
      if (e instanceof ConflictError) this.onConflict();
      throw e;
    });
  }

  /** Resolves when queued work has drained. */
  async idle(): Promise<void> {
    await this.tail.catch(() => undefined);
  }
}

/** Whether work in the admissions lane holds the queue as well. */
export type QueueHeld = "queue held" | "lane only";

/** The lane found the job's name taken meanwhile: the submission goes through the queue instead. */
const NEEDS_QUEUE = Symbol("needs the queue");

/**
 * Admissions: everything that creates a job or grows what a namespace
 * reserves runs in this lane, one at a time, so job names stay unique and no
 * two submissions spend the same quota remainder. A submission of a name
 * that has no job holds only the lane, never the queue, so it is answered as
 * soon as its job is durable however long a round in the queue takes. Lock
 * order: the queue, then the lane, never the reverse.
 */
export class Admissions {
  private readonly lane: SerialQueue;

  constructor(
    private readonly queue: SerialQueue,
    /** Whether a job of that id exists (in the primary's copy). */
    private readonly hasJob: (jobId: string) => boolean,
    isFenced: () => boolean,
    onConflict: () => void,
  ) {
    this.lane = new SerialQueue(isFenced, onConflict);
  }

  /**
   * A submission of job `jobId`. A new name needs nothing but the lane; a name
   * with a job already (a new version, or a finished job archived first)
   * changes what the queue's work reads, so it runs in the queue too.
   */
  async submit<T>(jobId: string, fn: (held: QueueHeld) => Promise<T>): Promise<T> {
    if (!this.hasJob(jobId)) {
      const done = await this.lane.run(async () => (this.hasJob(jobId) ? NEEDS_QUEUE : { value: await fn("lane only") }));
      if (done !== NEEDS_QUEUE) return done.value;
    }
    return this.queue.run(() => this.lane.run(() => fn("queue held")));
  }

  /** Work that grows a reservation from inside the queue (scale, revert, a workflow's new job). */
  fromQueue<T>(fn: () => Promise<T>): Promise<T> {
    return this.lane.run(fn);
  }

  /** Resolves when admitted work has drained. */
  idle(): Promise<void> {
    return this.lane.idle();
  }
}
