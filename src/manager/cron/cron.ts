import { createRequire } from "node:module";
import schedule from "node-schedule";
import type { Logger } from "../../common/logger.js";
import type { Job } from "../../common/types.js";

const require = createRequire(import.meta.url);
const cronParser = require("cron-parser") as { parseExpression(expr: string, o: { currentDate: Date }): { prev(): { getTime(): number } } };

/**
 * Cron for periodic batch jobs, on the primary only (node-schedule).
 *
 * Each firing is identified by its scheduled time. The primary records the
 * last firing in the job (durably, before the run's tasks are created), so:
 * - a firing is never doubled: a time at or before `cron.lastFiring` is ignored,
 *   whoever fires it (old primary, new primary, catch-up);
 * - a firing is never silently dropped across a failover: when a primary takes
 *   over it compares the latest scheduled time with `cron.lastFiring` and, if
 *   one was missed while no primary was acting, fires it once now (catch-up
 *   policy: at most one catch-up run per job, however many ticks were missed,
 *   and only if the missed time is within CATCH_UP_WINDOW_MS; older misses are
 *   reported as cron-missed instead of run).
 */
export const CATCH_UP_WINDOW_MS = 3_600_000;

export type FireFn = (jobId: string, scheduledAt: number, catchUp: boolean) => void;
export type MissFn = (jobId: string, scheduledAt: number) => void;

export class CronScheduler {
  private readonly jobs = new Map<string, { expr: string; handle: schedule.Job }>();
  private stopped = false;

  constructor(private readonly fire: FireFn, private readonly missed: MissFn, private readonly log: Logger, private readonly now: () => number = Date.now) {}

  /** Aligns the scheduled set with the live cron jobs; called on every primary tick. */
  sync(jobs: Iterable<Job>): void {
    if (this.stopped) return;
    const live = new Map<string, Job>();
    for (const j of jobs) if (j.spec.schedule && j.desired === "run") live.set(j.id, j);
    for (const [id, s] of this.jobs) {
      if (live.get(id)?.spec.schedule !== s.expr) {
        s.handle.cancel();
        this.jobs.delete(id);
      }
    }
    for (const [id, j] of live) {
      if (this.jobs.has(id)) continue;
      const expr = j.spec.schedule!;
      const handle = schedule.scheduleJob(expr, (fireDate: Date) => this.fire(id, fireDate.getTime(), false));
      if (!handle) {
        this.log.warn({ job: id, expr }, "cron expression not schedulable");
        continue;
      }
      this.jobs.set(id, { expr, handle });
      this.catchUp(j, expr);
    }
  }

  private catchUp(j: Job, expr: string): void {
    let prev: number;
    try {
      prev = cronParser.parseExpression(expr, { currentDate: new Date(this.now()) }).prev().getTime();
    } catch {
      return;
    }
    const last = j.cron?.lastFiring ?? j.submittedAt;
    if (prev <= last) return;
    if (this.now() - prev <= CATCH_UP_WINDOW_MS) this.fire(j.id, prev, true);
    else this.missed(j.id, prev);
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.jobs.values()) s.handle.cancel();
    this.jobs.clear();
  }
}
