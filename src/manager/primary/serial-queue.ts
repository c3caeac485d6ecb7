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
