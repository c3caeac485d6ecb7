import { TERMINAL_TASK_STATES, type Job, type TaskInstance } from "../../common/types.js";

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
