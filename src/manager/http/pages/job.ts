import { formatBytes } from "../../../common/units.js";
import type { AllocSpec, Job, TaskEvent, TaskInstance } from "../../../common/types.js";
import { badge, esc, fmtCpu, fmtTime, jsonForScript, seg, table } from "../../../http/pages/html.js";
import { deploymentView } from "../../deployment/view.js";
import { describeMetrics, type PlacementMetrics, type SmallestChange } from "../../scheduler/index.js";
import { TASKS_PER_PAGE, taskWindow, windowControls, type WindowQuery } from "./task-window.js";

const TIMELINE_LIMIT = 300;
/** Pending tasks whose reasons the page lists (the rest are counted). */
const PENDING_LISTED = 50;

export function taskHref(t: Pick<TaskInstance, "jobId" | "index">): string {
  return `/tasks/${seg(t.jobId)}/${t.index}`;
}

export function nodeLink(id: string | undefined): string {
  return id ? `<a href="/nodes/${esc(seg(id))}">${esc(id)}</a>` : "";
}

/** Why a task is where it is: the scheduler's reasons while pending, the exit otherwise. */
export function taskWhy(t: TaskInstance): string {
  return t.reason ?? t.exit?.reason ?? "";
}

/** One task row; `data-f` cells are updated by the client script from `task` events. */
export function taskRow(t: TaskInstance): string {
  return `<tr data-task="${esc(t.index)}"><td><a href="${esc(taskHref(t))}">${esc(t.index)}</a></td><td data-f="state">${badge(t.state)}</td><td data-f="node">${nodeLink(t.nodeId)}</td><td data-f="attempt">${esc(t.attempt)}</td><td data-f="why" class="wrap">${esc(taskWhy(t))}</td><td data-f="updated">${esc(fmtTime(t.updatedAt))}</td></tr>`;
}

export interface TimelineEntry extends TaskEvent {
  task: string;
}

/** All task events of a job, oldest first, the newest `limit` of them. */
export function timeline(tasks: readonly TaskInstance[], limit = TIMELINE_LIMIT): TimelineEntry[] {
  return tasks
    .flatMap((t) => t.events.map((e) => ({ ...e, task: t.id })))
    .sort((a, b) => a.at - b.at)
    .slice(-limit);
}

export function timelineItem(e: TimelineEntry): string {
  return `<li><time>${esc(fmtTime(e.at))}</time><strong>${esc(e.task)}</strong> ${esc(e.type)}: ${esc(e.message)}</li>`;
}

/** An alloc's tasks and their commands, in place of the job's command (docs/allocs.md). */
function allocCommands(alloc: AllocSpec): string {
  return `<dt>Alloc tasks</dt><dd>${alloc.tasks.map((m) => `${esc(m.name)}: <code class="command">${m.command.map((a) => esc(JSON.stringify(a))).join(" ")}</code>`).join("<br>")}</dd>`;
}

export function specCard(job: Job): string {
  const s = job.spec;
  const env = Object.entries(s.env);
  return `<div class="card"><h2>Specification</h2><dl class="kv">
<dt>Namespace</dt><dd>${esc(s.namespace)}</dd><dt>Type</dt><dd>${esc(s.type)}</dd><dt>Priority</dt><dd>${esc(s.priority)}</dd>
<dt>Instances</dt><dd>${esc(s.instances)}</dd>
<dt>Resources</dt><dd>${esc(`${fmtCpu(s.resources.cpu)}, ${formatBytes(s.resources.memory)} memory, ${formatBytes(s.resources.disk)} disk`)}</dd>
<dt>Package</dt><dd>${esc(s.packageText ?? "none")}${job.packageDigest ? ` <code>${esc(job.packageDigest)}</code>` : ""}</dd>
<dt>Isolation</dt><dd>${esc(s.isolation ?? "agent default")}</dd>
${s.alloc ? allocCommands(s.alloc) : `<dt>Command</dt><dd><code class="command">${s.command.map((a) => esc(JSON.stringify(a))).join(" ")}</code></dd>`}
<dt>Environment</dt><dd class="env">${env.length ? env.map(([k, val]) => `<code>${esc(k)}=${esc(val)}</code>`).join("<br>") : "none"}</dd>
${s.constraints.length ? `<dt>Constraints</dt><dd>${s.constraints.map((c) => esc(`${c.attribute} ${c.operator} ${Array.isArray(c.value) ? c.value.join(",") : c.value}`)).join("<br>")}</dd>` : ""}
${s.schedule ? `<dt>Schedule</dt><dd>${esc(s.schedule)}</dd>` : ""}
${s.service ? `<dt>Service</dt><dd>${esc(s.service.name)}</dd>` : ""}
</dl></div>`;
}

/** The job's version and its live (or last) deployment: per version, instances wanted, healthy, unhealthy, canaries awaiting promotion. */
export function deploymentCard(job: Job, tasks: readonly TaskInstance[], now: number): string {
  const view = deploymentView(job, tasks, now);
  const d = view.deployment;
  const line = d ? `${d.status}: ${d.description}` : "none";
  const rows = view.versions.map((v) => `<tr><td>${esc(v.version)}</td><td>${esc(v.instances)}</td><td>${esc(v.healthy)}</td><td>${esc(v.unhealthy)}</td><td>${esc(v.canaries)}</td><td>${esc(v.stopping)}</td></tr>`);
  return `<div class="card"><h2>Deployment</h2><dl class="kv">
<dt>Version</dt><dd id="job-version">${esc(view.version)}</dd><dt>Deployment</dt><dd id="job-deployment">${esc(line)}</dd>
</dl>${table(["Version", "Instances", "Healthy", "Unhealthy", "Canaries", "Stopping"], rows, ` id="deployment-versions"`)}</div>`;
}

/** One pending task: why it waits, and (on the primary) how the last placement round decided. */
function pendingItem(t: TaskInstance, metrics: PlacementMetrics | undefined): string {
  const how = metrics ? `<br><small class="metrics">${esc(describeMetrics(metrics))}</small>` : "";
  return `<li><a href="${esc(taskHref(t))}">${esc(t.id)}</a>: ${esc(t.reason ?? "waiting for the scheduler")}${how}</li>`;
}

/** The scheduler's smallest changes to the request that would fit now, as a list. */
function smallestChangeList(changes: readonly SmallestChange[] | undefined): string {
  if (!changes?.length) return "";
  return `<p>Smallest change that would fit now:</p><ul id="smallest-change">${changes.map((c) => `<li>${esc(c.text)}</li>`).join("")}</ul>`;
}

/** Extras of the job page: the task window (`?state=&page=`) and the action buttons (actions.ts). */
export interface JobPageOptions {
  window?: WindowQuery;
  actions?: string;
}

export function jobPage(job: Job, tasks: readonly TaskInstance[], placementOf: (taskId: string) => PlacementMetrics | undefined = () => undefined, smallestChange?: readonly SmallestChange[], opts: JobPageOptions = {}): string {
  const sorted = [...tasks].sort((a, b) => a.index - b.index);
  const pending = sorted.filter((t) => t.state === "pending");
  const q = opts.window ?? { page: 1 };
  const w = taskWindow(sorted, q);
  const events = timeline(sorted);
  const status = `<div class="card"><h2>Status</h2><dl class="kv">
<dt>Status</dt><dd id="job-status">${badge(job.status)}</dd><dt>Desired</dt><dd>${esc(job.desired)}</dd>
<dt>Submitted</dt><dd>${esc(fmtTime(job.submittedAt))}</dd><dt>Updated</dt><dd id="job-updated">${esc(fmtTime(job.updatedAt))}</dd>
${job.cron ? `<dt>Cron runs</dt><dd>${esc(job.cron.runs)}${job.cron.lastFiring ? `, last ${esc(fmtTime(job.cron.lastFiring))}` : ""}</dd>` : ""}
</dl></div>`;
  const why = pending.length
    ? `<h2>Why tasks are pending</h2><ul id="pending-reasons">${pending
        .slice(0, PENDING_LISTED)
        .map((t) => pendingItem(t, placementOf(t.id)))
        .join("")}</ul>${pending.length > PENDING_LISTED ? `<p class="muted">The first ${PENDING_LISTED} of ${pending.length} pending tasks.</p>` : ""}${smallestChangeList(smallestChange)}`
    : "";
  // Per-task event counts of the rows shown let the client append only the events it has not shown yet.
  const seen = Object.fromEntries(w.rows.map((t) => [t.index, t.events.length]));
  const deployment = job.spec.type === "service" ? deploymentCard(job, sorted, Date.now()) : "";
  return `<h1>Job ${esc(job.id)}</h1>${opts.actions ?? ""}<div class="cards">${status}${deployment}${specCard(job)}</div>${why}
<h2 id="tasks">Tasks (${sorted.length})</h2>${windowControls(w, q)}${table(["#", "State", "Node", "Attempt", "Reason / exit", "Updated"], w.rows.map(taskRow), ` id="tasks-table"`)}
<h2>Events</h2><ol class="timeline" id="timeline">${events.map(timelineItem).join("")}</ol>
<h2>Task description as submitted</h2><pre>${esc(job.source)}</pre>
<script type="application/json" id="torca-state">${jsonForScript({ job: job.id, seen, states: w.states, window: { ...(q.state ? { state: q.state } : {}), lastPage: w.page === w.pages, perPage: TASKS_PER_PAGE } })}</script>`;
}
