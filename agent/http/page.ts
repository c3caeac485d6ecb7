import { esc } from "../../src/manager/http/pages.js";
import { formatBytes } from "../../src/common/units.js";

interface AgentStatusView {
  id: string;
  url: string;
  epoch: number;
  zookeeper: string;
  leader: { id: string; url: string } | null;
  drivers: { lxc: boolean; process: boolean };
  allocatable: { cpu: number; memory: number; disk: number };
  tasks: { taskId: string; attempt: number; state: string; exit?: { reason: string } }[];
}

/** The agent's own small status page. */
export function agentPage(s: AgentStatusView): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Agent ${esc(s.id)} · Torca</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:1em}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left}</style></head>
<body><h1>Execute Server ${esc(s.id)}</h1>
<p>ZooKeeper: ${esc(s.zookeeper)} · primary: ${s.leader ? `<a href="${esc(s.leader.url)}">${esc(s.leader.id)}</a>` : "none"} · epoch seen: ${esc(s.epoch)} · drivers: ${s.drivers.lxc ? "lxc, " : ""}process</p>
<p>Allocatable: ${esc(s.allocatable.cpu)} cores, ${esc(formatBytes(s.allocatable.memory))} memory</p>
<h2>Tasks (${s.tasks.length})</h2><table><thead><tr><th>Task</th><th>Attempt</th><th>State</th><th>Exit</th></tr></thead><tbody>
${s.tasks.map((t) => `<tr><td>${esc(t.taskId)}</td><td>${esc(t.attempt)}</td><td>${esc(t.state)}</td><td>${esc(t.exit?.reason ?? "")}</td></tr>`).join("")}
</tbody></table></body></html>`;
}
