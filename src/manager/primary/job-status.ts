import type { Job, JobStatus, TaskInstance, TaskState } from "../../common/types.js";
import { tallyOf, terminalCount, type TaskTally } from "../../coord/store/task-tally.js";

/** A job's status, derived from its tasks (never stored independently of them). */
export function deriveJobStatus(job: Job, tasks: readonly TaskInstance[]): JobStatus {
  return statusOfTally(job, tallyOf(tasks));
}

/** A job's status from the count of its tasks in each state (the store keeps each job's, see TaskTally). */
export function statusOfTally(job: Job, n: Readonly<TaskTally>): JobStatus {
  const terminal = terminalCount(n);
  const count = (s: TaskState) => n.byState[s] ?? 0;
  if (job.desired === "stop") return terminal === n.total ? "dead" : "running";
  if (job.spec.schedule && n.total === 0) return "pending";
  if (job.spec.type === "batch" && n.total >= job.spec.instances && terminal === n.total) {
    return count("completed") === n.total ? "complete" : "failed";
  }
  if (count("running") + count("dispatched") > 0) return "running";
  if (n.total > 0 && count("failed") === n.total) return "failed";
  return "pending";
}

/** A live job cannot be replaced by a submission of the same name: it wants to run, or still runs. */
export function isLive(job: Job, tasks: readonly TaskInstance[]): boolean {
  // A service or cron job asked to run is live whatever its tasks: no scan of them.
  if (job.desired === "run" && (job.spec.type !== "batch" || job.spec.schedule)) return true;
  const status = deriveJobStatus(job, tasks);
  const finishedBatch = job.spec.type === "batch" && !job.spec.schedule && (status === "complete" || status === "failed");
  return (job.desired === "run" && !finishedBatch) || status === "running";
}

export interface JobStatusStore {
  readonly jobs: ReadonlyMap<string, Job>;
  taskTally(jobId: string): Readonly<TaskTally>;
  taskRevision(jobId: string): number;
  updateJob(job: Job): Promise<void>;
}

/** Writes each job's derived status when it changed; derived again only when the job or one of its tasks changed. */
export class JobStatusWriter {
  /** The task revision each job's status was last derived at (per job object: a changed job is derived again). */
  private readonly derivedAt = new WeakMap<Job, number>();

  constructor(private readonly store: JobStatusStore) {}

  /** One job's failed write must not hold up the others: errors are collected and the first rethrown. */
  async update(now: number): Promise<void> {
    let first: unknown;
    for (const job of [...this.store.jobs.values()]) {
      const revision = this.store.taskRevision(job.id);
      if (this.derivedAt.get(job) === revision) continue;
      const status = statusOfTally(job, this.store.taskTally(job.id));
      if (status === job.status) {
        this.derivedAt.set(job, revision);
        continue;
      }
      const next: Job = { ...job, status, updatedAt: now };
      try {
        await this.store.updateJob(next);
        this.derivedAt.set(next, revision);
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }
}
