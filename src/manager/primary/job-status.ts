import { TERMINAL_TASK_STATES, type Job, type JobStatus, type TaskInstance } from "../../common/types.js";

/** A job's status, derived from its tasks (never stored independently of them). */
export function deriveJobStatus(job: Job, tasks: readonly TaskInstance[]): JobStatus {
  // One pass, no allocation: every tick derives the status of each job whose tasks changed.
  let terminal = 0;
  let running = false;
  let completed = 0;
  let failed = 0;
  for (const t of tasks) {
    if (TERMINAL_TASK_STATES.has(t.state)) terminal++;
    if (t.state === "running" || t.state === "dispatched") running = true;
    else if (t.state === "completed") completed++;
    else if (t.state === "failed") failed++;
  }
  if (job.desired === "stop") return terminal === tasks.length ? "dead" : "running";
  if (job.spec.schedule && tasks.length === 0) return "pending";
  if (job.spec.type === "batch" && tasks.length >= job.spec.instances && terminal === tasks.length) {
    return completed === tasks.length ? "complete" : "failed";
  }
  if (running) return "running";
  if (tasks.length > 0 && terminal === tasks.length && failed === tasks.length) return "failed";
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
  tasksOf(jobId: string): readonly TaskInstance[];
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
      const status = deriveJobStatus(job, this.store.tasksOf(job.id));
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
