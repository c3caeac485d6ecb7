import { TERMINAL_TASK_STATES, type Job, type TaskInstance } from "../../common/types.js";
import { newTask, nextRun } from "../lifecycle/transitions.js";

export interface ExpandView {
  readonly jobs: ReadonlyMap<string, Job>;
  tasksOf(jobId: string): readonly TaskInstance[];
  taskCount(jobId: string): number;
}

/**
 * The task instance records every live job still lacks, pure. For cron jobs,
 * the instances of the current run (`cron.runs`), replacing finished ones of
 * earlier runs: level-triggered, so a run recorded by a primary that died
 * before creating its tasks is completed by the next one. At most `max`
 * records (the rest come next time); jobs `skip` names get none.
 */
export function tasksToCreate(view: ExpandView, now: number, limits: { max?: number; skip?: (job: Job) => boolean } = {}): TaskInstance[] {
  const creates: TaskInstance[] = [];
  const max = limits.max ?? Infinity;
  for (const job of view.jobs.values()) {
    if (creates.length >= max) break;
    if (job.desired !== "run" || limits.skip?.(job)) continue;
    if (job.spec.schedule) {
      const run = job.cron?.runs ?? 0;
      if (run === 0 || run <= (job.cron?.retiredRun ?? 0)) continue;
      const byIndex = new Map(view.tasksOf(job.id).map((t) => [t.index, t]));
      for (let i = 0; i < job.spec.instances; i++) {
        const t = byIndex.get(i);
        if (!t) creates.push(newTask(job, i, run, now));
        else if (t.run < run && TERMINAL_TASK_STATES.has(t.state)) creates.push(nextRun(job, t, run, now));
      }
      continue;
    }
    if (view.taskCount(job.id) >= job.spec.instances) continue;
    const have = new Set(view.tasksOf(job.id).map((t) => t.index));
    for (let i = 0; i < job.spec.instances && creates.length < max; i++) if (!have.has(i)) creates.push(newTask(job, i, 0, now));
  }
  return creates;
}
