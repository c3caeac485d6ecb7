import { formatBytes } from "../../../common/units.js";
import type { NodeInfo } from "../../../common/types.js";
import type { StateStore } from "../../../coord/state-store.js";
import type { ManagerView } from "../api.js";
import { cellCapacity, fragmentation, usedByNode } from "./capacity.js";
import { badge, bar, countBy, esc, fmtCpu, fmtResources, fmtTime, safeHref, seg } from "../../../http/pages/html.js";
import { JOB_STATUSES, jobsClientState, jobTable } from "./jobs.js";
import { usageByNamespace } from "../../quota/usage.js";
import { quotaViews } from "../quotas.js";
import { quotaSection } from "./quotas.js";

const OVERVIEW_JOBS = 50;

function counts(pairs: [string, number][], attr?: string): string {
  return `<dl class="kv">${pairs.map(([k, n]) => `<dt>${badge(k)}</dt><dd${attr ? ` ${attr}="${esc(k)}"` : ""}>${n}</dd>`).join("")}</dl>`;
}

function managersCard(v: ManagerView): string {
  const l = v.leader();
  const self = v.primary()?.isActive ? "primary" : "backup";
  return `<div class="card"><h2>Managers</h2><dl class="kv">
<dt>Primary</dt><dd>${l ? `<a href="${safeHref(l.url)}">${esc(l.id)}</a> <span class="muted">${esc(l.url)}</span>` : "none elected"}</dd>
<dt>Epoch</dt><dd>${l ? esc(l.epoch) : "—"}</dd>
<dt>Primary since</dt><dd>${l ? esc(fmtTime(l.since)) : "—"}</dd>
<dt>This manager</dt><dd>${esc(v.id)} (${self})</dd>
<dt>Backups</dt><dd>${self === "backup" ? esc(v.id) : "<span class=\"muted\">not tracked by the primary; each backup names itself on its own page</span>"}</dd>
<dt>ZooKeeper</dt><dd>${badge(v.zookeeperState())}</dd></dl></div>`;
}

/** `archived`: job generations in the history store (undefined on a backup, or while the store is not open). */
export function overviewPage(v: ManagerView, store: StateStore, nodes: readonly NodeInfo[], archived?: number): string {
  const tasks = [...store.allTasks()];
  const used = usedByNode(store.jobs, tasks);
  const cap = cellCapacity(nodes, used);
  const frag = fragmentation(nodes, store.jobs, tasks, used);
  const jobs = [...store.jobs.values()].sort((a, b) => b.submittedAt - a.submittedAt);
  const shown = jobs.slice(0, OVERVIEW_JOBS);
  const capacity = `<div class="card"><h2>Capacity in use</h2>
${bar("CPU", cap.used.cpu, cap.allocatable.cpu, fmtCpu)}
${bar("Memory", cap.used.memory, cap.allocatable.memory, formatBytes)}
${bar("Disk", cap.used.disk, cap.allocatable.disk, formatBytes)}
<p class="muted">Allocatable of ${nodes.filter((n) => n.state !== "lost").length} live node(s) against the resources of running and dispatched tasks.</p></div>`;
  const fragCard = `<div class="card" id="fragmentation"><h2>Fragmentation</h2>${
    frag.pendingTasks === 0
      ? `<p>No pending tasks, so no free resources are stranded.</p>`
      : frag.strandedNodes.length === 0
        ? `<p>${frag.pendingTasks} pending task(s); each ready node still has room for at least one of them.</p>`
        : `<p>${frag.pendingTasks} pending task(s) fit on none of ${frag.strandedNodes.length} node(s), stranding <strong>${esc(fmtResources(frag.stranded))}</strong> of ${esc(fmtResources(frag.free))} free.</p><p class="muted">Stranded on: ${frag.strandedNodes.map((id) => `<a href="/nodes/${esc(seg(id))}">${esc(id)}</a>`).join(", ")}</p>`
  }</div>`;
  const nodesCard = `<div class="card"><h2><a href="/nodes">Nodes</a> (${nodes.length})</h2>${counts(countBy(nodes, (n) => n.state, ["ready", "draining", "disconnected", "lost"]))}</div>`;
    const archivedLine = `<p class="muted" id="job-archived">${jobs.length} live in ZooKeeper · ${archived === undefined ? `<a href="/history">archived: see History</a>` : `<a href="/history">${archived} archived</a>`}</p>`;
  const jobsCard = `<div class="card"><h2><a href="/jobs">Jobs</a> (<span id="job-total">${jobs.length}</span>)</h2>${counts(countBy(jobs, (j) => j.status, JOB_STATUSES), "data-count")}${archivedLine}</div>`;
  const quotas = quotaSection(quotaViews(v.quotas()?.all() ?? new Map(), usageByNamespace(store)));
  return `<h1>Cell overview</h1><div class="cards">${capacity}${fragCard}${nodesCard}${jobsCard}${managersCard(v)}</div>${quotas}
<h2>Recent jobs</h2>${jobTable(store, shown)}${jobs.length > shown.length ? `<p class="muted">The newest ${shown.length} of ${jobs.length}; see <a href="/jobs">all jobs</a>.</p>` : ""}${jobsClientState(store, shown, {})}`;
}
