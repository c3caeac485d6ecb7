import { TERMINAL_TASK_STATES, type Job, type TaskInstance } from "../../common/types.js";
import type { FinishedRunState, FinishedStatus } from "../../history/record.js";
import { deriveJobStatus, isLive } from "../primary/job-status.js";
import { terminalCount, type TaskTally } from "../../coord/store/task-tally.js";

/**
 * What leaves ZooKeeper now, decided from the state alone (pure; time passed
 * in). Live jobs are never touched.
 *
 * - A terminal job leaves whole once it finished `terminalMs` ago, or earlier
 *   when its namespace holds more than `keepPerNamespace` terminal jobs (the
 *   oldest go first).
 * - A cron job stays, but its runs leave: a run a newer firing supersedes is
 *   archived before expansion reuses its task records (`replaced`), and the
 *   last run, once finished `terminalMs` ago, is archived and its task records
 *   deleted (the job notes it as `cron.retiredRun`, so expansion does not
 *   recreate it).
 *
 * Superseded runs come first (their job's next run waits for them), then the
 * rest oldest first; at most `batch` in all, so one tick stays short.
 */

export interface RetentionPolicy {
  terminalMs: number;
  keepPerNamespace: number;
  batch: number;
}

export interface RetentionView {
  readonly jobs: ReadonlyMap<string, Job>;
  tasksOf(jobId: string): readonly TaskInstance[];
  taskTally(jobId: string): Readonly<TaskTally>;
}

export type Retirement =
  /** The whole job: archive every run, then delete the job's znodes. */
  | { kind: "job"; job: Job; runs: FinishedRunState[]; finishedAt: number }
  /** One run of a cron job: archive it; `deleteTasks` when no newer run will replace its records. */
  | { kind: "run"; job: Job; run: FinishedRunState; finishedAt: number; deleteTasks: boolean };

export function finishedAtOf(job: Job, tasks: readonly TaskInstance[]): number {
  let at = tasks.length ? 0 : job.updatedAt;
  for (const t of tasks) at = Math.max(at, t.finishedAt ?? t.updatedAt);
  return at;
}

/** A finished run's status: complete when every task completed, dead when one was killed, failed otherwise. */
export function runStatusOf(tasks: readonly TaskInstance[]): FinishedStatus {
  if (tasks.every((t) => t.state === "completed")) return "complete";
  if (tasks.some((t) => t.state === "killed")) return "dead";
  return "failed";
}

function byRun(tasks: readonly TaskInstance[]): Map<number, TaskInstance[]> {
  const runs = new Map<number, TaskInstance[]>();
  for (const t of tasks) {
    const r = runs.get(t.run);
    if (r) r.push(t);
    else runs.set(t.run, [t]);
  }
  return runs;
}

const allTerminal = (tasks: readonly TaskInstance[]) => tasks.every((t) => TERMINAL_TASK_STATES.has(t.state));

/** The whole of a finished job as one retirement; undefined while it is live or a task is unfinished. */
export function wholeJob(job: Job, tasks: readonly TaskInstance[]): Retirement | undefined {
  if (isLive(job, tasks) || !allTerminal(tasks)) return undefined;
  const status = deriveJobStatus(job, tasks);
  if (status !== "complete" && status !== "failed" && status !== "dead") return undefined;
  const groups = byRun(tasks);
  const runs: FinishedRunState[] =
    groups.size === 0
      ? [{ run: job.cron?.runs ?? 0, status, tasks: [] }]
      : [...groups].sort(([a], [b]) => a - b).map(([run, ts]) => ({ run, status: groups.size === 1 ? status : runStatusOf(ts), tasks: ts }));
  return { kind: "job", job, runs, finishedAt: finishedAtOf(job, tasks) };
}

function cronRuns(job: Job, tasks: readonly TaskInstance[], p: RetentionPolicy, now: number): Retirement[] {
  const current = job.cron?.runs ?? 0;
  const out: Retirement[] = [];
  for (const [run, ts] of byRun(tasks)) {
    if (!allTerminal(ts)) continue;
    const finishedAt = finishedAtOf(job, ts);
    const state: FinishedRunState = { run, status: runStatusOf(ts), tasks: ts };
    if (run < current) out.push({ kind: "run", job, run: state, finishedAt, deleteTasks: false });
    else if (run > (job.cron?.retiredRun ?? 0) && ts.length >= job.spec.instances && finishedAt + p.terminalMs <= now) {
      out.push({ kind: "run", job, run: state, finishedAt, deleteTasks: true });
    }
  }
  return out;
}

export function retirements(view: RetentionView, p: RetentionPolicy, now: number): Retirement[] {
  const replaced: Retirement[] = [];
  const due: Retirement[] = [];
  const terminalByNamespace = new Map<string, Retirement[]>();
  for (const job of view.jobs.values()) {
    // Neither finished nor a cron job (whose runs retire one by one): nothing to retire, and no need to read its tasks.
    const tally = view.taskTally(job.id);
    if (!job.spec.schedule && terminalCount(tally) < tally.total) continue;
    const tasks = view.tasksOf(job.id);
    const whole = wholeJob(job, tasks);
    if (whole) {
      const ns = job.spec.namespace;
      const list = terminalByNamespace.get(ns);
      if (list) list.push(whole);
      else terminalByNamespace.set(ns, [whole]);
      continue;
    }
    if (!job.spec.schedule || job.desired !== "run") continue;
    for (const r of cronRuns(job, tasks, p, now)) (r.kind === "run" && !r.deleteTasks ? replaced : due).push(r);
  }
  for (const list of terminalByNamespace.values()) {
    list.sort((a, b) => b.finishedAt - a.finishedAt);
    list.forEach((r, newest) => {
      if (newest >= p.keepPerNamespace || r.finishedAt + p.terminalMs <= now) due.push(r);
    });
  }
  due.sort((a, b) => a.finishedAt - b.finishedAt);
  return [...replaced, ...due].slice(0, p.batch);
}
