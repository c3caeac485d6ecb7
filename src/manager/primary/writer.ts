import { TorcaError } from "../../common/errors.js";
import type { TaskInstance } from "../../common/types.js";

export interface TaskStore {
  /** Resolves once the record is durable; the store commits the records of one chunk together (coord/store/group-commit.ts). */
  putTask(task: TaskInstance): Promise<void>;
  /** Takes the record into the copy now and into ZooKeeper with its chunk's next write (coord/state-store.ts). */
  deferTask(task: TaskInstance, now: number): void;
}

/** Task records to ZooKeeper; a fenced primary writes nothing. */
export class TaskWriter {
  constructor(
    private readonly store: TaskStore,
    private readonly isFenced: () => boolean,
  ) {}

  /** All records handed to the store at once, so it can commit each chunk's share in one write. */
  async put(tasks: readonly TaskInstance[]): Promise<void> {
    if (tasks.length === 0) return;
    if (this.isFenced()) throw new TorcaError("not_primary", "fenced", { status: 503 });
    await Promise.all(tasks.map((t) => this.store.putTask(t)));
  }

  /** Observations agents repeat in every report: in the copy now, durable later; nothing may wait on them being durable. */
  defer(tasks: readonly TaskInstance[], now: number): void {
    if (tasks.length === 0) return;
    if (this.isFenced()) throw new TorcaError("not_primary", "fenced", { status: 503 });
    for (const t of tasks) this.store.deferTask(t, now);
  }

  /**
   * Writes dispatched records and hands each to `send` once it is durable,
   * that is as soon as the write of its chunk lands: agents start on the
   * first tasks while the rest are still being written. A failed write holds
   * back only its own tasks (the others are recorded as dispatched and would
   * otherwise wait out the missing-task grace); the first failure is rethrown
   * at the end. A primary fenced meanwhile sends nothing more.
   */
  async putThenSend(tasks: readonly TaskInstance[], send: (t: TaskInstance) => void): Promise<void> {
    if (tasks.length === 0 || this.isFenced()) return;
    let firstError: unknown;
    await Promise.all(
      tasks.map((t) =>
        this.store.putTask(t).then(
          () => {
            if (!this.isFenced()) send(t);
          },
          (e: unknown) => {
            firstError ??= e;
          },
        ),
      ),
    );
    if (firstError) throw firstError;
  }
}
