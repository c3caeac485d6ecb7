import { TERMINAL_TASK_STATES, type Job, type JobStatus, type TaskInstance } from "../../common/types.js";

/** A job's status, derived from its tasks (never stored independently of them). */
export function deriveJobStatus(job: Job, tasks: TaskInstance[]): JobStatus {
  const terminal = tasks.filter((t) => TERMINAL_TASK_STATES.has(t.state)).length;
  if (job.desired === "stop") return terminal === tasks.length ? "dead" : "running";
  if (job.spec.schedule && tasks.length === 0) return "pending";
  const running = tasks.some((t) => t.state === "running" || t.state === "dispatched");
  if (job.spec.type === "batch" && tasks.length >= job.spec.instances && terminal === tasks.length) {
    return tasks.every((t) => t.state === "completed") ? "complete" : "failed";
  }
  if (running) return "running";
  if (tasks.length > 0 && terminal === tasks.length && tasks.every((t) => t.state === "failed")) return "failed";
  return "pending";
}
