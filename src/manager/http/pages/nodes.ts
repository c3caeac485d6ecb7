import { formatBytes } from "../../../common/units.js";
import type { Job, NodeInfo, Resources, TaskInstance } from "../../../common/types.js";
import type { StateStore } from "../../../coord/state-store.js";
import { holdsResources, sub, usedByNode, ZERO } from "./capacity.js";
import { badge, bar, esc, fmtCpu, fmtTime, seg, table } from "../../../http/pages/html.js";

function taskLink(t: TaskInstance): string {
  return `<a href="/tasks/${esc(seg(t.jobId))}/${esc(t.index)}">${esc(t.id)}</a>`;
}

export function nodesPage(store: StateStore, nodes: readonly NodeInfo[]): string {
  const tasks = [...store.allTasks()];
  const used = usedByNode(store.jobs, tasks);
  // Counted in one pass: a filter over every task per node is O(nodes × tasks), minutes at 10,000 × 100,000.
  const counts = new Map<string, number>();
  for (const t of tasks) if (t.nodeId && holdsResources(t)) counts.set(t.nodeId, (counts.get(t.nodeId) ?? 0) + 1);
  const rows = [...nodes]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((n) => {
      const u = used.get(n.id) ?? ZERO;
      const count = counts.get(n.id) ?? 0;
      return `<tr data-node="${esc(n.id)}"><td><a href="/nodes/${esc(seg(n.id))}">${esc(n.id)}</a></td><td data-f="state">${badge(n.state)}</td><td>${esc(n.host)}</td><td>${esc(`${fmtCpu(u.cpu)} / ${fmtCpu(n.allocatable.cpu)}`)}</td><td>${esc(`${formatBytes(u.memory)} / ${formatBytes(n.allocatable.memory)}`)}</td><td>${esc(`${formatBytes(u.disk)} / ${formatBytes(n.allocatable.disk)}`)}</td><td>${count}</td><td>${esc(fmtTime(n.lastReportAt))}</td></tr>`;
    });
  return `<h1>Nodes <span class="muted">(${nodes.length})</span></h1>${table(["Node", "State", "Host", "CPU used", "Memory used", "Disk used", "Tasks", "Last report"], rows)}${nodes.length === 0 ? `<p class="muted">No agents have registered.</p>` : ""}`;
}

function kv(pairs: [string, string][]): string {
  return `<dl class="kv">${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("")}</dl>`;
}

/** Extras of the node page: the usage-over-time section (usage-graphs.ts) and the action buttons (actions.ts). */
export interface NodePageExtras {
  charts?: string;
  actions?: string;
  /** The reservation estimates of the node's running tasks (reservations.ts). */
  reservations?: string;
}

export function nodePage(store: StateStore, n: NodeInfo, extras: NodePageExtras = {}): string {
  const here = [...store.tasksOnNode(n.id)].sort((a, b) => b.updatedAt - a.updatedAt);
  const used = usedByNode(store.jobs, here).get(n.id) ?? ZERO;
  const free = sub(n.allocatable, used);
  const jobOf = (t: TaskInstance): Job | undefined => store.jobs.get(t.jobId);
  const info = kv([
    ["State", badge(n.state)],
    ["Host", esc(n.host)],
    ["Agent URL", esc(n.url)],
    ["Drivers", esc([n.drivers.lxc ? "lxc" : "", n.drivers.process ? "process" : ""].filter(Boolean).join(", "))],
    ["Port range", esc(`${n.portRange[0]}–${n.portRange[1]}`)],
    ["Cached packages", esc(n.cachedPackages.length)],
    ["Load (1 min)", esc(n.load ? n.load.cpu1m.toFixed(2) : "not reported")],
    ["Memory used (host)", esc(n.load ? formatBytes(n.load.memoryUsed) : "not reported")],
    ["Disk free (host)", esc(n.load ? formatBytes(n.load.diskFree) : "not reported")],
    ["Last report", esc(fmtTime(n.lastReportAt))],
  ]);
  const resourceRows: [string, Resources][] = [
    ["Capacity", n.capacity],
    ["Allocatable", n.allocatable],
    ["Held by tasks", used],
    ["Free", free],
  ];
  const resources = `${bar("CPU", used.cpu, n.allocatable.cpu, fmtCpu)}${bar("Memory", used.memory, n.allocatable.memory, formatBytes)}${bar("Disk", used.disk, n.allocatable.disk, formatBytes)}
${table(["", "CPU", "Memory", "Disk"], resourceRows.map(([label, x]) => `<tr><th>${esc(label)}</th><td>${esc(fmtCpu(x.cpu))}</td><td>${esc(formatBytes(x.memory))}</td><td>${esc(formatBytes(x.disk))}</td></tr>`))}`;
  const attrs = Object.entries(n.attributes).sort(([a], [b]) => a.localeCompare(b));
  const taskRows = here.map((t) => {
    const r = jobOf(t)?.spec.resources;
    return `<tr><td>${taskLink(t)}</td><td>${badge(t.state)}</td><td>${esc(t.attempt)}</td><td>${esc(r ? `${fmtCpu(r.cpu)}, ${formatBytes(r.memory)}` : "")}</td><td>${esc(fmtTime(t.updatedAt))}</td></tr>`;
  });
  return `<h1>Node ${esc(n.id)}</h1>${extras.actions ?? ""}<div class="cards"><div class="card"><h2>Machine</h2>${info}</div><div class="card"><h2>Resources</h2>${resources}</div></div>
${extras.charts ? `<h2>Usage over time</h2>${extras.charts}` : ""}
${extras.reservations ?? ""}
<h2>Tasks on this node (${here.length})</h2>${table(["Task", "State", "Attempt", "Resources", "Updated"], taskRows)}
<h2>Attributes (${attrs.length})</h2>${table(["Attribute", "Value"], attrs.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`))}${devicesSection(n, here)}`;
}

/** The node's device instances, each with its attributes and the tasks holding it (none when the node offers no devices). */
function devicesSection(n: NodeInfo, here: readonly TaskInstance[]): string {
  const groups = n.devices ?? [];
  if (groups.length === 0) return "";
  const rows = groups.flatMap((g) =>
    g.instances.map((i) => {
      const holders = here.filter((t) => t.devices?.some((d) => d.name === g.name && d.ids.includes(i.id)));
      const attrs = Object.entries(i.attributes).map(([k, v]) => `${k}=${v}`).join(", ");
      return `<tr><td>${esc(g.name)}${g.shareable ? " (shareable)" : ""}</td><td>${esc(i.id)}</td><td>${esc(attrs)}</td><td>${holders.length ? holders.map(taskLink).join(", ") : "free"}</td></tr>`;
    }),
  );
  return `<h2>Devices (${rows.length})</h2>${table(["Device", "Instance", "Attributes", "Held by"], rows)}`;
}
