import { TorcaError } from "../../common/errors.js";
import type { TaskInstance } from "../../common/types.js";

/** Writes in flight at once: ZooKeeper handles many small writes well in parallel, not thousands. */
export const WRITE_PARALLELISM = 64;

export interface TaskStore {
  putTask(task: TaskInstance): Promise<void>;
}

/** Task records to ZooKeeper, in chunks; a fenced primary writes nothing. */
export class TaskWriter {
  constructor(
    private readonly store: TaskStore,
    private readonly isFenced: () => boolean,
  ) {}

  async put(tasks: readonly TaskInstance[]): Promise<void> {
    if (tasks.length === 0) return;
    if (this.isFenced()) throw new TorcaError("not_primary", "fenced", { status: 503 });
    for (let i = 0; i < tasks.length; i += WRITE_PARALLELISM) {
      await Promise.all(tasks.slice(i, i + WRITE_PARALLELISM).map((t) => this.store.putTask(t)));
    }
  }

  /**
   * Writes dispatched records chunk by chunk and hands each to `send` once it
   * is durable: agents start on the first tasks while the rest are still
   * being written. A failed write holds back only its own task (the others of
   * its chunk are recorded as dispatched and would otherwise wait out the
   * missing-task grace); the first failure is rethrown at the end.
   */
  async putThenSend(tasks: readonly TaskInstance[], send: (t: TaskInstance) => void): Promise<void> {
    let firstError: unknown;
    for (let i = 0; i < tasks.length; i += WRITE_PARALLELISM) {
      if (this.isFenced()) break;
      const chunk = tasks.slice(i, i + WRITE_PARALLELISM);
      const results = await Promise.allSettled(chunk.map((t) => this.store.putTask(t)));
      results.forEach((r, k) => {
        if (r.status === "rejected") firstError ??= r.reason;
        else send(chunk[k] as TaskInstance);
      });
    }
    if (firstError) throw firstError;
  }
}
