/** The task page of an alloc instance (docs/allocs.md): its members with state, exit and OOM, and whose logs to tail. */
import type { Job, TaskInstance } from "../../../common/types.js";
import { formatBytes } from "../../../common/units.js";
import { badge, esc } from "../../../http/pages/html.js";

/** The member whose logs the page tails: the one asked for if the alloc has it, else its first; undefined for plain tasks. */
export function logMemberOf(job: Job, asked: string | undefined): string | undefined {
  const names = job.spec.alloc?.tasks.map((m) => m.name);
  if (!names) return undefined;
  return asked !== undefined && names.includes(asked) ? asked : names[0];
}

/** A card listing the alloc's members: spec'd caps, reported state, exit and OOM; "" for plain tasks. */
export function membersCard(job: Job, t: TaskInstance, stream: string): string {
  const spec = job.spec.alloc;
  if (!spec) return "";
  const reported = new Map((t.members ?? []).map((m) => [m.name, m]));
  const rows = spec.tasks.map((m) => {
    const r = reported.get(m.name);
    const caps = [m.resources?.cpu !== undefined ? `${m.resources.cpu} cpu` : "", m.resources?.memory !== undefined ? formatBytes(m.resources.memory) : ""].filter(Boolean).join(", ") || "shares the alloc's";
    return `<tr data-member="${esc(m.name)}"><td><a href="?member=${esc(encodeURIComponent(m.name))}&stream=${esc(stream)}">${esc(m.name)}</a></td><td>${r ? badge(r.state) : "-"}</td><td>${esc(r?.exit ? String(r.exit.exitCode ?? "-") : "-")}</td><td>${r?.exit?.oomKilled ? badge("oom-killed") : ""}</td><td>${esc(r?.exit?.reason ?? "")}</td><td>${esc(caps)}</td></tr>`;
  });
  return `<div class="card"><h2>Alloc tasks</h2><table id="members"><thead><tr><th>Task</th><th>State</th><th>Exit</th><th>OOM</th><th>Reason</th><th>Own caps</th></tr></thead><tbody>${rows.join("")}</tbody></table>
<p class="muted">They share the alloc's ${esc(String(job.spec.resources.cpu))} cpu and ${esc(formatBytes(job.spec.resources.memory))}; a task's name opens its logs.</p></div>`;
}
