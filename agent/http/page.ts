import { formatBytes } from "../../src/common/units.js";
import { badge, esc, fmtTime, safeHref, table } from "../../src/http/pages/html.js";
import { documentHead } from "../../src/http/pages/document.js";

interface AgentStatusView {
  id: string;
  url: string;
  epoch: number;
  zookeeper: string;
  leader: { id: string; url: string } | null;
  drivers: { lxc: boolean; process: boolean };
  allocatable: { cpu: number; memory: number; disk: number };
  tasks: { taskId: string; attempt: number; state: string; startedAt?: number; ports?: Record<string, number>; exit?: { reason: string } }[];
}

/** The agent's own small status page, in the manager pages' style; every value is escaped. */
export function agentPage(s: AgentStatusView): string {
  const drivers = [s.drivers.lxc ? "lxc" : "", s.drivers.process ? "process" : ""].filter(Boolean).join(", ");
  const rows = s.tasks.map(
    (t) =>
      `<tr><td>${esc(t.taskId)}</td><td>${esc(t.attempt)}</td><td>${badge(t.state)}</td><td>${esc(t.ports ? Object.entries(t.ports).map(([k, p]) => `${k}=${p}`).join(", ") : "")}</td><td>${esc(fmtTime(t.startedAt))}</td><td>${esc(t.exit?.reason ?? "")}</td></tr>`,
  );
  return `${documentHead(`Agent ${s.id}`)}
<body><header><span class="brand">Torca</span><span>Execute Server ${esc(s.id)}</span>${s.leader ? `<a class="me" href="${safeHref(s.leader.url)}">Primary: ${esc(s.leader.id)}</a>` : ""}</header><main>
<h1>Execute Server ${esc(s.id)}</h1>
<div class="cards"><div class="card"><h2>Agent</h2><dl class="kv">
<dt>URL</dt><dd>${esc(s.url)}</dd>
<dt>ZooKeeper</dt><dd>${badge(s.zookeeper)}</dd>
<dt>Primary</dt><dd>${s.leader ? `<a href="${safeHref(s.leader.url)}">${esc(s.leader.id)}</a>` : "none"}</dd>
<dt>Highest epoch seen</dt><dd>${esc(s.epoch)}</dd>
<dt>Drivers</dt><dd>${esc(drivers)}</dd>
<dt>Allocatable</dt><dd>${esc(`${s.allocatable.cpu} cores, ${formatBytes(s.allocatable.memory)} memory, ${formatBytes(s.allocatable.disk)} disk`)}</dd>
</dl></div></div>
<h2>Tasks (${s.tasks.length})</h2>${table(["Task", "Attempt", "State", "Ports", "Started", "Exit"], rows)}${s.tasks.length === 0 ? `<p class="muted">No tasks on this machine.</p>` : ""}
</main></body></html>`;
}
