import type { Logger } from "../../common/logger.js";
import { TERMINAL_TASK_STATES, type Job, type TaskInstance } from "../../common/types.js";
import type { ZkStateStore } from "../../coord/state-store.js";
import { CronScheduler } from "../cron/cron.js";
import type { AlertSink } from "./primary.js";
import { tasksToCreate } from "./expand.js";
import type { SerialQueue } from "./serial-queue.js";
import type { TaskWriter } from "./writer.js";

export type CronFiring =
  | { action: "none" }
  /** The previous run is still going: the firing is recorded as skipped (and alerted), never silent. */
  | { action: "skip"; job: Job }
  /** A new run: recorded durably first (never doubled); its tasks follow from expansion. */
  | { action: "fire"; job: Job; run: number };

/** What one firing of a cron job at `at` does, pure. */
export function cronFiring(job: Job | undefined, tasks: readonly TaskInstance[], at: number, now: number): CronFiring {
  if (!job || job.desired !== "run" || !job.spec.schedule) return { action: "none" };
  const cron = job.cron ?? { runs: 0 };
  if ((cron.lastFiring ?? 0) >= at) return { action: "none" };
  if (tasks.some((t) => !TERMINAL_TASK_STATES.has(t.state))) return { action: "skip", job: { ...job, cron: { ...cron, lastFiring: at }, updatedAt: now } };
  return { action: "fire", job: { ...job, cron: { lastFiring: at, runs: cron.runs + 1 }, updatedAt: now }, run: cron.runs + 1 };
}

export interface CronFiringDeps {
  store: ZkStateStore;
  queue: SerialQueue;
  writer: TaskWriter;
  log: Logger;
  alert: AlertSink;
  now: () => number;
  /** A new run's tasks exist: place them. */
  requestTick: () => void;
}

/** The primary's cron: the schedule's timers, and each firing carried out through the serial queue. */
export class CronFirer {
  private readonly scheduler: CronScheduler;

  constructor(private readonly d: CronFiringDeps) {
    this.scheduler = new CronScheduler(
      (jobId, at, catchUp) => void this.fire(jobId, at, catchUp).catch((e: unknown) => d.log.warn({ err: e }, `cron ${jobId} failed`)),
      (jobId, at) => {
        const job = d.store.jobs.get(jobId);
        if (job) d.alert("cron-missed", `cron-missed:${jobId}:${at}`, { job, text: `cron job ${jobId} missed its run of ${new Date(at).toISOString()} (older than the catch-up window)` });
      },
      d.log,
      d.now,
    );
  }

  /** Follows the jobs' schedules as they are now. */
  sync(): void {
    this.scheduler.sync(this.d.store.jobs.values());
  }

  stop(): void {
    this.scheduler.stop();
  }

  /** One firing of a cron job: recorded durably first (never doubled), then its run's tasks follow from expansion. */
  fire(jobId: string, at: number, catchUp: boolean): Promise<void> {
    const { store, log, now } = this.d;
    return this.d.queue.run(async () => {
      const firing = cronFiring(store.jobs.get(jobId), store.tasksOf(jobId), at, now());
      if (firing.action === "none") return;
      await store.updateJob(firing.job);
      if (firing.action === "skip") {
        this.d.alert("cron-missed", `cron-missed:${jobId}:${at}`, { job: firing.job, text: `cron job ${jobId}: run of ${new Date(at).toISOString()} skipped, the previous run is still active` });
        return;
      }
      log.info({ job: jobId, run: firing.run, at: new Date(at).toISOString(), catchUp }, "cron fired");
      await this.d.writer.put(tasksToCreate(store, now()));
      this.d.requestTick();
    });
  }
}
