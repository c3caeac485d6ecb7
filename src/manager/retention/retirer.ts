import { ConflictError, UnavailableError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { Job } from "../../common/types.js";
import { archiveKeyOf, archiveRecordOf, type ArchivedVersion } from "../../history/record.js";
import type { HistoryStore } from "../../history/store.js";
import type { UsageLedger } from "../usage/ledger.js";
import { retirements, wholeJob, type RetentionPolicy, type RetentionView, type Retirement } from "./decide.js";

export interface RetirerStore extends RetentionView {
  updateJob(job: Job): Promise<void>;
  deleteJob(jobId: string): Promise<void>;
  deleteTasks(jobId: string, indexes: readonly number[]): Promise<void>;
}

export interface RetirerDeps {
  store: RetirerStore;
  /** The open history store, or undefined while it opens. */
  history: () => HistoryStore | undefined;
  /** A live job's kept versions (archived with its runs) and their removal once the job has left ZooKeeper. */
  versions?: { of(jobId: string): Promise<ArchivedVersion[]>; forget(jobId: string): Promise<void> };
  /** Waits for the history store to open; undefined when it cannot be opened now. */
  historyReady?: () => Promise<HistoryStore | undefined>;
  usage: UsageLedger;
  policy: RetentionPolicy;
  log: Logger;
  now: () => number;
  isFenced: () => boolean;
}

/**
 * Carries out retention as archive → confirm → delete, one job (or cron run)
 * at a time, on the primary's serial queue. A primary that dies anywhere in
 * between leaves the work in ZooKeeper, either unarchived or archived; the
 * next primary archives it again (stored once: the archive is keyed by job id
 * and generation, the generation being the job's `submittedAt`, which no
 * later write changes), confirms and deletes. Nothing is lost or doubled.
 */
export class Retirer {
  /** Cron jobs whose superseded run is not archived yet: expansion must not reuse its task records. */
  private held = new Set<string>();
  /** Archives written since start (for the logs and the soak's rate). */
  archived = 0;

  constructor(private readonly d: RetirerDeps) {}

  /** True while a cron job's next run must wait for its previous run's archive. */
  holdsBack(jobId: string): boolean {
    return this.held.has(jobId);
  }

  async run(): Promise<void> {
    const due = retirements(this.d.store, this.d.policy, this.d.now());
    const history = due.length ? this.d.history() : undefined;
    // Until the store is open, a superseded cron run is not held back: cron keeps its schedule and that run goes unarchived.
    this.held = new Set(history ? due.flatMap((r) => (r.kind === "run" && !r.deleteTasks ? [r.job.id] : [])) : []);
    if (!history) return;
    let first: unknown;
    for (const r of due) {
      if (this.d.isFenced()) return;
      try {
        await this.retire(history, r);
      } catch (e) {
        first ??= e;
        this.d.log.warn({ job: r.job.id, err: e }, "retention: not retired this time");
      }
    }
    if (first) throw first;
  }

  /**
   * Archives a finished job at once and deletes it, because a submission
   * reuses its name: the run it stood for reaches the history store before
   * the new job replaces it in ZooKeeper.
   */
  async retireNow(job: Job): Promise<void> {
    const r = wholeJob(job, this.d.store.tasksOf(job.id));
    if (!r) throw new ConflictError(`job ${job.id} is still finishing; submit again once it is dead`, { jobId: job.id });
    const history = this.d.history() ?? (await this.d.historyReady?.());
    if (!history) throw new UnavailableError(`the history store is not open, so the finished job ${job.id} cannot be archived before its name is reused; try again shortly`);
    await this.retire(history, r);
  }

  private async retire(history: HistoryStore, r: Retirement): Promise<void> {
    const { job } = r;
    const runs = r.kind === "job" ? r.runs : [r.run];
    // A versioned job takes its versions along; its runs are of the version it ran last.
    const versions = (await this.d.versions?.of(job.id)) ?? [];
    const versioned = versions.length ? { versions, runs: runs.map((x) => ({ ...x, version: x.version ?? job.version ?? 0 })) } : { runs };
    const record = archiveRecordOf({ job, generation: job.submittedAt, ...versioned, usage: (t) => t.usage ?? this.d.usage.totals(t.id) });
    const stored = await history.archiveJob(record);
    if (!(await history.isArchived(archiveKeyOf(record)))) throw new Error(`archive of ${job.id} not confirmed; it stays in ZooKeeper`);
    this.archived++;
    this.d.log.info({ job: job.id, generation: record.generation, runs: runs.map((x) => x.run), tasks: record.tasks.length, stored: stored.tasks }, "archived");
    if (this.d.isFenced()) return;
    await this.remove(r);
    this.held.delete(job.id);
    for (const t of runs.flatMap((x) => x.tasks)) this.d.usage.forget(t.id);
  }

  private async remove(r: Retirement): Promise<void> {
    const { job } = r;
    if (r.kind === "job") {
      // Stopped first: a deletion cut short leaves a job that is not live, so nothing re-runs it and the next pass finishes the deletion.
      if (job.desired !== "stop") await this.d.store.updateJob({ ...job, desired: "stop" });
      await this.d.store.deleteJob(job.id);
      await this.d.versions?.forget(job.id);
      return;
    }
    if (!r.deleteTasks) return;
    const cur = this.d.store.jobs.get(job.id) ?? job;
    await this.d.store.updateJob({ ...cur, cron: { runs: cur.cron?.runs ?? r.run.run, ...cur.cron, retiredRun: r.run.run } });
    await this.d.store.deleteTasks(job.id, r.run.tasks.map((t) => t.index));
  }
}
