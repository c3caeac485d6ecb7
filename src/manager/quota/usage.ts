import { PRIORITY_PROD, type Job, type JobSpec, type TaskInstance } from "../../common/types.js";
import { deriveJobStatus } from "../primary/job-status.js";

/**
 * What the jobs of a namespace hold against its quota, pure. As in Borg, a
 * quota is a reservation: a live job holds instances × its per-task resources
 * whether or not its tasks are placed yet, and gives them back when it is
 * killed (desired stop) or has finished.
 */

/** Priority bands: prod is priority 200 and above, batch everything below. */
export type Band = "prod" | "batch";
export const BANDS: readonly Band[] = ["prod", "batch"];

/** Cores, bytes and task instances. */
export interface Amounts {
  cpu: number;
  memory: number;
  instances: number;
}

export type Usage = Record<Band, Amounts>;

export function bandOf(priority: number): Band {
  return priority >= PRIORITY_PROD ? "prod" : "batch";
}

export function zeroUsage(): Usage {
  return { prod: { cpu: 0, memory: 0, instances: 0 }, batch: { cpu: 0, memory: 0, instances: 0 } };
}

/** What a job of this spec reserves: every instance's resources. */
export function reservationOf(spec: Pick<JobSpec, "instances" | "resources">): Amounts {
  return { cpu: spec.instances * spec.resources.cpu, memory: spec.instances * spec.resources.memory, instances: spec.instances };
}

/**
 * Whether a job holds its reservation: it wants to run and has not finished.
 * A cron job holds it between runs too, since its next firing needs it.
 */
export function holdsQuota(job: Job, tasks: readonly TaskInstance[]): boolean {
  if (job.desired !== "run") return false;
  if (job.spec.schedule) return true;
  const status = deriveJobStatus(job, tasks);
  return status !== "complete" && status !== "failed" && status !== "dead";
}

export interface UsageView {
  readonly jobs: ReadonlyMap<string, Job>;
  tasksOf(jobId: string): readonly TaskInstance[];
}

/** Every namespace's usage per band (namespaces holding nothing are absent). */
export function usageByNamespace(view: UsageView): Map<string, Usage> {
  const out = new Map<string, Usage>();
  for (const job of view.jobs.values()) {
    if (!holdsQuota(job, view.tasksOf(job.id))) continue;
    let u = out.get(job.spec.namespace);
    if (!u) out.set(job.spec.namespace, (u = zeroUsage()));
    add(u[bandOf(job.spec.priority)], reservationOf(job.spec));
  }
  return out;
}

/** One namespace's usage per band; jobs `skip` names count nothing. */
export function usageOf(view: UsageView, namespace: string, skip?: (jobId: string) => boolean): Usage {
  const u = zeroUsage();
  for (const job of view.jobs.values()) {
    if (job.spec.namespace !== namespace || skip?.(job.id)) continue;
    if (holdsQuota(job, view.tasksOf(job.id))) add(u[bandOf(job.spec.priority)], reservationOf(job.spec));
  }
  return u;
}

/** Adds what a job of `spec` reserves to `used`. */
export function addReservation(used: Usage, spec: Pick<JobSpec, "priority" | "instances" | "resources">): void {
  add(used[bandOf(spec.priority)], reservationOf(spec));
}

function add(to: Amounts, a: Amounts): void {
  to.cpu += a.cpu;
  to.memory += a.memory;
  to.instances += a.instances;
}
