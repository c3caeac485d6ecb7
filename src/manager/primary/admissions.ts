import { ConflictError, TorcaError } from "../../common/errors.js";
import type { JobSpec } from "../../common/types.js";
import { requireWithinQuota, type Quota } from "../quota/admission.js";
import { addReservation, usageOf, type Usage, type UsageView } from "../quota/usage.js";
import type { SerialQueue } from "./serial-queue.js";

/** Whether work admitted here holds the primary's serial queue as well. */
export type QueueHeld = "queue held" | "name only";

/** A reservation admitted but not yet durable. */
interface PendingReservation {
  namespace: string;
  spec: Pick<JobSpec, "priority" | "instances" | "resources">;
}

/** The name was taken while the submission waited for it: the submission goes through the queue instead. */
const NEEDS_QUEUE = Symbol("needs the queue");

/**
 * Runs work one at a time per key and concurrently across keys. A key's
 * entry is dropped once its work has drained, so the map holds only keys
 * with work in flight.
 */
class KeyedLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  async idle(): Promise<void> {
    await Promise.all(this.tails.values());
  }
}

/**
 * Admissions: everything that creates a job or grows what a namespace
 * reserves.
 *
 * Quota: the decision (`admit`) is synchronous against what the store holds
 * plus what was admitted but is not durable yet (`pending`, one entry per job
 * until the admitter releases it, once its write has landed or failed), so
 * two admissions never spend the same remainder although their writes
 * overlap. Releasing is the admitter's, not a lock's: an automatic revert
 * admits from inside a round, holding no name.
 *
 * Names: work on one job id runs one at a time. A submission of a name that
 * has no job holds only its name, never the queue, so it is answered as soon
 * as its job is durable, whatever a round in the queue or other submissions
 * are doing. Work on a job that exists (a new version, a scale, a revert)
 * runs in the queue and then holds the name. Lock order: an idempotency key,
 * the queue, a name; never the reverse.
 */
export class Admissions {
  private readonly locks = new KeyedLocks();
  private readonly pending = new Map<string, PendingReservation>();

  constructor(
    private readonly queue: SerialQueue,
    /** Whether a job of that id exists (in the primary's copy). */
    private readonly hasJob: (jobId: string) => boolean,
    private readonly isFenced: () => boolean,
    /** A version conflict means our copy was behind (the store reloads it): the next round works from fresh data. */
    private readonly onConflict: () => void,
  ) {}

  /**
   * A submission of job `jobId`. A new name needs nothing but its name; a
   * name with a job already (a new version, or a finished job archived
   * first) changes what the queue's work reads, so it runs in the queue too.
   */
  async submit<T>(jobId: string, fn: (held: QueueHeld) => Promise<T>): Promise<T> {
    if (!this.hasJob(jobId)) {
      const done = await this.holdingName(jobId, async () => (this.hasJob(jobId) ? NEEDS_QUEUE : { value: await fn("name only") }));
      if (done !== NEEDS_QUEUE) return done.value;
    }
    return this.queue.run(() => this.holdingName(jobId, () => fn("queue held")));
  }

  /** Work on job `jobId` from inside the queue that may grow its reservation (scale, revert, a workflow's new job). */
  fromQueue<T>(jobId: string, fn: () => Promise<T>): Promise<T> {
    return this.holdingName(jobId, fn);
  }

  /** Requests carrying one idempotency key run one at a time (whatever job they name). */
  holdingKey<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(`key ${key}`, fn);
  }

  /**
   * Admits `spec` as job `jobId`'s reservation (replacing what the job holds
   * now) or throws the quota refusal. Synchronous: nothing else is admitted
   * between the check and the reservation. The reservation counts until the
   * returned release is called, which the admitter does once its write has
   * landed (the store counts the job from then on) or failed.
   */
  admit(jobId: string, spec: JobSpec, quota: Quota | undefined, view: UsageView): () => void {
    requireWithinQuota(spec.namespace, quota, this.usage(view, spec.namespace, jobId), spec);
    const entry: PendingReservation = { namespace: spec.namespace, spec };
    this.pending.set(jobId, entry);
    return () => {
      if (this.pending.get(jobId) === entry) this.pending.delete(jobId);
    };
  }

  /** What `namespace` holds: the store's jobs, with admitted reservations in place of their jobs' stored ones; `except` counts nothing. */
  usage(view: UsageView, namespace: string, except?: string): Usage {
    const used = usageOf(view, namespace, (id) => id === except || this.pending.has(id));
    for (const [id, p] of this.pending) if (id !== except && p.namespace === namespace) addReservation(used, p.spec);
    return used;
  }

  /** Resolves when admitted work has drained. */
  idle(): Promise<void> {
    return this.locks.idle();
  }

  private holdingName<T>(jobId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(`job ${jobId}`, async () => {
      if (this.isFenced()) throw new TorcaError("not_primary", "this manager is no longer the primary", { status: 503 });
      try {
        return await fn();
      } catch (e) {
        if (e instanceof ConflictError) this.onConflict();
        throw e;
      }
    });
  }
}
