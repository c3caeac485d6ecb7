import { JOB_STATUSES, type Job, type JobStatus, type TaskInstance, type TaskState } from "../../../common/types.js";
import type { StateStore } from "../../../coord/state-store.js";
import { badge, esc, fmtTime, jsonForScript, seg, table } from "../../../http/pages/html.js";

export { JOB_STATUSES };

export const TASK_STATES: readonly TaskState[] = ["pending", "dispatched", "running", "completed", "failed", "killed", "lost"];
export const JOB_TYPES = ["service", "batch"] as const;

/** "running 2 · pending 1", in lifecycle order; the client script formats the same way. */
export function taskCounts(tasks: readonly Pick<TaskInstance, "state">[]): string {
  const n = new Map<string, number>();
  for (const t of tasks) n.set(t.state, (n.get(t.state) ?? 0) + 1);
  return TASK_STATES.filter((s) => n.has(s))
    .map((s) => `${s} ${n.get(s)}`)
    .join(" · ");
}

export const JOB_TABLE_HEAD = ["Job", "Namespace", "Type", "Priority", "Status", "Tasks", "Instances", "Submitted"];

/** One job row; `data-f` cells are what the client script updates from `job`/`task` events. */
export function jobRow(j: Job, tasks: readonly TaskInstance[]): string {
  return `<tr data-job="${esc(j.id)}" data-type="${esc(j.spec.type)}"><td><a href="/jobs/${esc(seg(j.id))}">${esc(j.spec.name)}</a></td><td>${esc(j.spec.namespace)}</td><td>${esc(j.spec.type)}</td><td>${esc(j.spec.priority)}</td><td data-f="status">${badge(j.status)}</td><td data-f="tasks">${esc(taskCounts(tasks))}</td><td>${esc(j.spec.instances)}</td><td>${esc(fmtTime(j.submittedAt))}</td></tr>`;
}

/** The client script's starting point: task states of the listed jobs, statuses of all. */
export interface JobsClientState {
  statuses: Record<string, JobStatus>;
  tasks: Record<string, Record<number, TaskState>>;
  /** Only rows matching these are added live (the jobs page's filters). */
  filter: { status?: string; type?: string };
}

export function jobsClientState(store: StateStore, shown: readonly Job[], filter: JobsClientState["filter"]): string {
  const state: JobsClientState = { statuses: {}, tasks: {}, filter };
  for (const j of store.jobs.values()) state.statuses[j.id] = j.status;
  for (const j of shown) state.tasks[j.id] = Object.fromEntries(store.tasksOf(j.id).map((t) => [t.index, t.state]));
  return `<script type="application/json" id="torca-state">${jsonForScript(state)}</script>`;
}

export function jobTable(store: StateStore, jobs: readonly Job[]): string {
  return table(
    JOB_TABLE_HEAD,
    jobs.map((j) => jobRow(j, store.tasksOf(j.id))),
    ` id="jobs-table"`,
  );
}

export function option(value: string, label: string, selected: string | undefined): string {
  return `<option value="${esc(value)}"${value === (selected ?? "") ? " selected" : ""}>${esc(label)}</option>`;
}

export interface JobFilter {
  status?: string;
  type?: string;
}

export function filterJobs(jobs: Iterable<Job>, f: JobFilter): Job[] {
  return [...jobs].filter((j) => (!f.status || j.status === f.status) && (!f.type || j.spec.type === f.type)).sort((a, b) => b.submittedAt - a.submittedAt);
}

export const JOBS_PAGE_LIMIT = 500;

export function jobsPage(store: StateStore, f: JobFilter): string {
  const all = filterJobs(store.jobs.values(), f);
  const shown = all.slice(0, JOBS_PAGE_LIMIT);
  const form = `<form class="filters" method="get" action="/jobs">
<label>Status<select name="status">${option("", "any", f.status)}${JOB_STATUSES.map((s) => option(s, s, f.status)).join("")}</select></label>
<label>Type<select name="type">${option("", "any", f.type)}${JOB_TYPES.map((s) => option(s, s, f.type)).join("")}</select></label>
<button type="submit">Filter</button></form>`;
  const more = all.length > shown.length ? `<p class="muted">Showing the newest ${shown.length} of ${all.length}.</p>` : "";
  const empty = all.length === 0 ? `<p class="muted" id="no-jobs">No jobs match.</p>` : "";
  return `<h1>Jobs <span class="muted">(${all.length})</span></h1>${form}${jobTable(store, shown)}${empty}${more}${jobsClientState(store, shown, { ...(f.status ? { status: f.status } : {}), ...(f.type ? { type: f.type } : {}) })}`;
}
