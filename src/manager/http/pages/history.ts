import { formatBytes } from "../../../common/units.js";
import type { FinishedPage, JobView } from "../../../history/queries.js";
import { FINISHED_STATUSES } from "../../../history/record.js";
import { badge, esc, fmtTime, safeHref, seg, table } from "../../../http/pages/html.js";
import { option } from "./jobs.js";

/** The History page's filters, as given in its query string (validated by the caller). */
export interface HistoryFilter {
  namespace?: string;
  state?: string;
  since?: string;
  cursor?: string;
}

export const HISTORY_SINCE = ["1h", "24h", "7d", "30d"] as const;

function query(f: HistoryFilter, cursor?: string): string {
  const q = new URLSearchParams();
  if (f.namespace) q.set("namespace", f.namespace);
  if (f.state) q.set("state", f.state);
  if (f.since) q.set("since", f.since);
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}

/** Finished jobs from the history store, newest first, a page at a time (an "older" link carries the cursor). */
export function historyPage(page: FinishedPage, f: HistoryFilter): string {
  const form = `<form class="filters" method="get" action="/history">
<label>Namespace<input name="namespace" value="${esc(f.namespace ?? "")}" placeholder="any" size="12"></label>
<label>State<select name="state">${option("", "any", f.state)}${FINISHED_STATUSES.map((s) => option(s, s, f.state)).join("")}</select></label>
<label>Finished within<select name="since">${option("", "any time", f.since)}${HISTORY_SINCE.map((s) => option(s, s, f.since)).join("")}</select></label>
<button type="submit">Filter</button></form>`;
  const rows = page.items.map(
    (i) =>
      `<tr><td><a href="/history/${esc(seg(i.jobId))}">${esc(i.job)}</a></td><td>${esc(i.namespace)}</td><td>${esc(i.type)}</td><td>${esc(i.run)}</td><td>${badge(i.status)}</td><td>${esc(i.tasks)}</td><td>${esc(fmtTime(i.startedAt))}</td><td>${esc(fmtTime(i.finishedAt))}</td></tr>`,
  );
  const empty = page.items.length ? "" : `<p class="muted">No archived job matches.</p>`;
  const older = page.next ? `<p><a href="/history?${esc(query(f, page.next))}">Older</a></p>` : "";
  return `<h1>History</h1><p class="muted">Finished jobs that left ZooKeeper after their retention, from the history store.</p>${form}${table(["Job", "Namespace", "Type", "Run", "Status", "Tasks", "Started", "Finished"], rows, ` id="history-table"`)}${empty}${older}`;
}

/** Shown by a backup: the history store is the primary's alone. */
export function historyOnPrimary(primaryUrl: string | undefined, path: string): string {
  return `<h1>History</h1><p>History is served by the primary${primaryUrl ? `: <a href="${safeHref(primaryUrl.replace(/\/$/, "") + path)}">open it there</a>` : " (none is elected right now)"}.</p>`;
}

/** One job's archived runs (every generation under the name, newest first) with their tasks and usage. */
export function jobHistoryPage(id: string, view: JobView, live: boolean): string {
  const liveNote = live ? `<p>The job is also live: <a href="/jobs/${esc(seg(id))}">its current state</a>.</p>` : "";
  const runs = view.runs.map((r) => {
    const rows = r.tasks.map(
      (t) =>
        `<tr><td>${esc(t.id)}</td><td>${badge(t.state)}</td><td>${esc(t.exit?.reason ?? "—")}</td><td>${esc(t.node ?? "—")}</td><td>${esc(t.attempts)}</td><td>${esc(t.usage.cpuSeconds.toFixed(2))}</td><td>${esc(formatBytes(t.usage.peakMemoryBytes))}</td><td>${esc(t.usage.wallSeconds.toFixed(1))}</td><td>${esc(fmtTime(t.finishedAt))}</td></tr>`,
    );
    return `<h2>Run ${esc(r.run)} ${badge(r.status)} <span class="muted">generation ${esc(fmtTime(r.generation))}, version ${esc(r.version)}, finished ${esc(fmtTime(r.finishedAt))}</span></h2>${table(["Task", "State", "Exit", "Node", "Attempts", "CPU s", "Peak memory", "Wall s", "Finished"], rows)}`;
  });
  return `<h1>History of ${esc(id)}</h1>${liveNote}<p class="muted">${view.versions.length} archived version(s), ${view.runs.length} archived run(s).</p>${runs.join("") || `<p class="muted">Nothing archived yet.</p>`}`;
}
