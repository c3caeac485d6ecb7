import type { HistoryConfig } from "../common/config.js";
import { archiveJob, isArchived, type ArchiveResult } from "./archive.js";
import { migrate } from "./migrations.js";
import { openHistoryDatabase } from "./open.js";
import { countJobs, countTasks, jobView, listFinished, usage, type FinishedPage, type JobView, type ListFinishedOptions, type UsageKey, type UsageRow } from "./queries.js";
import type { ArchiveKey, ArchiveRecord } from "./record.js";
import type { SqlDatabase } from "./sql.js";

/**
 * The history store: finished jobs, their runs and tasks, archived by the
 * primary before they leave ZooKeeper, and the queries over them. Opening it
 * brings the schema up to date.
 *
 * Retention uses it as archive → confirm → delete: `archiveJob(record)`, then
 * `isArchived(archiveKeyOf(record))`, and only then the deletion from
 * ZooKeeper; a primary that dies anywhere in between repeats the archive
 * harmlessly.
 */
export class HistoryStore {
  private constructor(
    readonly db: SqlDatabase,
    /** Migrations this start applied (empty when the schema was current). */
    readonly migrationsApplied: number[],
  ) {}

  static async open(config: HistoryConfig): Promise<HistoryStore> {
    return HistoryStore.on(await openHistoryDatabase(config));
  }

  /** On an open database, which the store then owns (closing the store closes it). */
  static async on(db: SqlDatabase): Promise<HistoryStore> {
    try {
      return new HistoryStore(db, await migrate(db));
    } catch (e) {
      await db.close();
      throw e;
    }
  }

  get engine(): SqlDatabase["engine"] {
    return this.db.engine;
  }

  archiveJob(record: ArchiveRecord): Promise<ArchiveResult> {
    return archiveJob(this.db, record);
  }

  isArchived(key: ArchiveKey): Promise<boolean> {
    return isArchived(this.db, key);
  }

  listFinished(o: ListFinishedOptions = {}): Promise<FinishedPage> {
    return listFinished(this.db, o);
  }

  jobView(job: string, namespace?: string): Promise<JobView> {
    return jobView(this.db, job, namespace);
  }

  usage(o: { by: UsageKey; since?: number; namespace?: string }): Promise<UsageRow[]> {
    return usage(this.db, o);
  }

  countTasks(): Promise<number> {
    return countTasks(this.db);
  }

  countJobs(): Promise<number> {
    return countJobs(this.db);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
