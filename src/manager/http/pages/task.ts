import type { Got } from "got";
import { formatBytes } from "../../../common/units.js";
import type { ReportedTask } from "../../../common/protocol.js";
import type { Job, NodeInfo, TaskInstance } from "../../../common/types.js";
import { badge, bar, esc, fmtTime, jsonForScript } from "../../../http/pages/html.js";
import { nodeLink, specCard, timeline, timelineItem } from "./job.js";
import { logMemberOf, membersCard } from "./alloc-members.js";

const USAGE_TIMEOUT_MS = 1000;

/** Usage as agents report it per task (all fields optional: not every driver measures everything). */
export type ReportedUsage = NonNullable<ReportedTask["usage"]>;

/**
 * What the task's agent currently reports about its resource use, or why
 * there is nothing to show. Agents report usage as part of their task list
 * (`usage` in the report protocol); absent fields mean "not measured".
 */
export async function fetchUsage(http: Got, node: NodeInfo | undefined, t: TaskInstance): Promise<ReportedUsage | string> {
  if (t.state !== "running") return `no usage data when this page loaded: the task was ${t.state}`;
  if (!node || node.state === "lost") return "no usage data: the task's node is not reachable";
  try {
    const r = await http.get(`${node.url}/v1/tasks`, { timeout: { request: USAGE_TIMEOUT_MS }, retry: { limit: 0 } }).json<{ tasks: { taskId: string; attempt: number; usage?: ReportedUsage }[] }>();
    const mine = r.tasks.find((x) => x.taskId === t.id && x.attempt === t.attempt);
    if (!mine?.usage || Object.keys(mine.usage).length === 0) return `no usage data: agent ${node.id} does not report resource usage for this task`;
    return mine.usage;
  } catch (e) {
    return `no usage data: agent ${node.id} did not answer (${(e as Error).message})`;
  }
}

export function usageSection(usage: ReportedUsage | string, job: Job): string {
  if (typeof usage === "string") return `<p class="muted" id="usage">${esc(usage)}</p>`;
  const limit = job.spec.resources;
  const parts: string[] = [];
  if (usage.memoryBytes !== undefined) parts.push(bar("Memory", usage.memoryBytes, limit.memory, formatBytes));
  if (usage.memoryPeakBytes !== undefined) parts.push(bar("Peak", usage.memoryPeakBytes, limit.memory, formatBytes));
  const facts: string[] = [];
  if (usage.cpuNs !== undefined) facts.push(`CPU time ${(usage.cpuNs / 1e9).toFixed(2)} s`);
  if (usage.pids !== undefined) facts.push(`${usage.pids} process(es)`);
  return `<div id="usage">${parts.join("")}${facts.length ? `<p>${esc(facts.join(" · "))}</p>` : ""}<p class="muted">As the agent measures it now, against the job's limits.</p></div>`;
}

export type LogStream = "stdout" | "stderr";

/** `charts`: the usage-over-time section (usage-graphs.ts); `actions`: the buttons (actions.ts). */
/** `member`: whose logs an alloc's page shows (`?member=`; default its first task). */
export function taskPage(job: Job, t: TaskInstance, usage: ReportedUsage | string, stream: LogStream, charts = "", actions = "", member?: string, reservation = ""): string {
  const events = timeline([t]);
  const info = `<div class="card"><h2>State</h2><dl class="kv">
<dt>State</dt><dd data-f="state">${badge(t.state)}</dd>
<dt>Desired</dt><dd data-f="desired">${esc(t.desired)}</dd>
<dt>Node</dt><dd data-f="node">${nodeLink(t.nodeId)}</dd>
<dt>Attempt</dt><dd data-f="attempt">${esc(t.attempt)}</dd>
<dt>Restarts on node</dt><dd data-f="restarts">${esc(t.restartsOnNode)}</dd>
<dt>Migrations</dt><dd>${esc(t.migrations)}</dd>
<dt>Reason / exit</dt><dd data-f="why">${esc(t.reason ?? t.exit?.reason ?? "")}</dd>
<dt>Ports</dt><dd>${t.ports ? esc(Object.entries(t.ports).map(([k, p]) => `${k}=${p}`).join(", ")) : "none"}</dd>${t.devices?.length ? `<dt>Devices</dt><dd>${esc(t.devices.map((d) => `${d.name} ${d.ids.join(", ")}`).join("; "))}</dd>` : ""}
<dt>Started</dt><dd data-f="started">${esc(fmtTime(t.startedAt))}</dd>
<dt>Finished</dt><dd data-f="finished">${esc(fmtTime(t.finishedAt))}</dd>
</dl><p><a href="/jobs/${esc(encodeURIComponent(job.id))}">Job ${esc(job.id)}</a></p></div>`;
  const other: LogStream = stream === "stdout" ? "stderr" : "stdout";
  const logMember = logMemberOf(job, member);
  const memberQuery = logMember ? `&member=${esc(encodeURIComponent(logMember))}` : "";
  const logs = `<h2>Log tail (${stream}${logMember ? ` of ${esc(logMember)}` : ""}) <a class="muted" href="?stream=${other}${memberQuery}">show ${other}</a></h2>
<p class="muted" id="log-status">connecting…</p><pre id="log" data-task="${esc(t.id)}" data-stream="${stream}"${logMember ? ` data-member="${esc(logMember)}"` : ""}></pre>`;
  return `<h1>Task ${esc(t.id)}</h1>${actions}<div class="cards">${info}<div class="card"><h2>Resource use</h2>${usageSection(usage, job)}</div>${membersCard(job, t, stream)}${reservation}</div>
${charts ? `<h2>Usage over time</h2>${charts}` : ""}
${logs}
<h2>Events</h2><ol class="timeline" id="timeline">${events.map(timelineItem).join("")}</ol>
<div class="cards">${specCard(job)}</div>
<script type="application/json" id="torca-state">${jsonForScript({ job: job.id, task: t.id, index: t.index, taskState: t.state, attempt: t.attempt, seen: { [t.index]: t.events.length } })}</script>`;
}
