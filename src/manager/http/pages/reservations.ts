/**
 * Reservation estimates on the pages (docs/reclamation.md): per running task,
 * what it asked for (request), what the primary estimates it needs
 * (reservation) and what it uses now; whether it runs on reclaimed capacity.
 */
import { formatBytes } from "../../../common/units.js";
import type { Job, NodeInfo, TaskInstance } from "../../../common/types.js";
import { badge, esc, fmtCpu, seg, table } from "../../../http/pages/html.js";
import type { StateStore } from "../../../coord/state-store.js";
import { estimateOf, type EstimateView } from "../../usage/view.js";
import type { ReservationEstimates } from "../../usage/reservations.js";

const RECLAIMED_NOTE = "on reclaimed capacity: throttled, then evicted back to pending, when the tasks it borrows from need it";

function cells(e: EstimateView | undefined): string {
  if (!e) return `<td colspan="3" class="muted">no estimate yet</td><td colspan="3"></td>`;
  const cpu = (d?: { cpu: number }) => (d ? fmtCpu(d.cpu) : "—");
  const mem = (d?: { memory: number }) => (d ? formatBytes(d.memory) : "—");
  return `<td>${esc(cpu(e.request))}</td><td>${esc(cpu(e.reservation))}</td><td>${esc(cpu(e.usage))}</td><td>${esc(mem(e.request))}</td><td>${esc(mem(e.reservation))}</td><td>${esc(mem(e.usage))}</td>`;
}

const HEAD = ["CPU request", "CPU reservation", "CPU use", "Memory request", "Memory reservation", "Memory use"];

/** The task page's card: request, reservation and use, and the reclaimed mark. */
export function taskReservationCard(job: Job, t: TaskInstance, estimates: ReservationEstimates | undefined): string {
  const e = estimateOf(t, job, estimates);
  const mark = t.reclaimed ? `<p data-f="reclaimed">${badge("reclaimed")} ${esc(RECLAIMED_NOTE)}</p>` : "";
  const body = t.state !== "running" ? `<p class="muted">Estimated while the task runs.</p>` : table(HEAD, [`<tr>${cells(e)}</tr>`]);
  return `<div class="card" id="reservation"><h2>Reservation</h2>${mark}${body}<p class="muted">The reservation is the peak use over the estimate window plus a margin, at most the request; prod tasks lend request − reservation to batch work.</p></div>`;
}

/** The node page's section: every running task's request, reservation and use; the capacity prod tasks lend. */
export function nodeReservationSection(store: StateStore, n: NodeInfo, estimates: ReservationEstimates | undefined): string {
  const running = [...store.tasksOnNode(n.id)].filter((t) => t.state === "running" && t.nodeId === n.id).sort((a, b) => a.id.localeCompare(b.id));
  const lent = estimates?.reclaimableByNode(store.jobs, running, Date.now()).get(n.id);
  const rows = running.map((t) => {
    const job = store.jobs.get(t.jobId);
    return `<tr><td><a href="/tasks/${seg(t.jobId)}/${t.index}">${esc(t.id)}</a></td><td>${esc(job?.spec.priority ?? "")}</td>${cells(estimateOf(t, job, estimates))}<td>${t.reclaimed ? badge("reclaimed") : ""}</td></tr>`;
  });
  const summary = lent ? `<p data-f="reclaimable">Reclaimable here: ${esc(fmtCpu(lent.cpu))} cpu, ${esc(formatBytes(lent.memory))} memory (reserved by prod tasks, not needed by their estimates).</p>` : "";
  return `<h2>Reservations</h2>${summary}${table(["Task", "Priority", ...HEAD, "Capacity"], rows)}`;
}
