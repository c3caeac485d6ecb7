import { formatDuration } from "../common/units.js";
import { describeKindCounts, type StormSummary } from "./policy.js";
import type { AlertEvent, AlertMessage, AlertSeverity } from "./types.js";

/** Rendering of alert messages (pure). Everything that came from users is escaped in HTML. */

export const SMS_MAX_CHARS = 160;

const SEVERITY_TAG: Record<AlertSeverity, string> = { critical: "CRITICAL", warning: "WARNING", info: "INFO" };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** Header-safe: a subject never carries line breaks or other control characters. */
export function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
}

/** Cuts to `max` characters (code points, so emoji are not split), ending in "…" when cut. */
export function truncateChars(s: string, max: number): string {
  const chars = Array.from(s);
  if (chars.length <= max) return s;
  return chars.slice(0, Math.max(0, max - 1)).join("") + "…";
}

/** Only http(s) links are rendered as links; anything else would be an injection vector in HTML mail. */
export function safeLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  try {
    const u = new URL(link);
    return u.protocol === "http:" || u.protocol === "https:" ? u.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** Caps on user-controlled text, so a delivery record stays small enough for a ZooKeeper node. */
const SUBJECT_MAX_CHARS = 200;
const TEXT_MAX_CHARS = 2000;

export function formatAlert(ev: AlertEvent): AlertMessage {
  const e = { ...ev, subject: truncateChars(oneLine(ev.subject), SUBJECT_MAX_CHARS), text: truncateChars(ev.text, TEXT_MAX_CHARS) };
  const subject = `[torca ${SEVERITY_TAG[e.severity]}] ${e.subject}`;
  const link = safeLink(e.link);
  const facts: [string, string][] = [["Kind", e.kind]];
  if (e.jobId) facts.push(["Job", e.jobId]);
  if (e.taskId) facts.push(["Task", e.taskId]);
  if (e.nodeId) facts.push(["Node", e.nodeId]);
  facts.push(["When", new Date(e.at).toISOString()]);
  facts.push(["Incident", e.key]);

  const text = [e.text, "", ...facts.map(([k, v]) => `${k}: ${v}`), ...(link ? ["", link] : [])].join("\n");
  const html = [
    `<p>${escapeHtml(e.text).replace(/\n/g, "<br>")}</p>`,
    `<table>${facts.map(([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join("")}</table>`,
    link ? `<p><a href="${escapeHtml(link)}">${escapeHtml(link)}</a></p>` : "",
  ].join("\n");
  return { subject, text, html, short: shortForm(`${SEVERITY_TAG[e.severity]} ${e.subject}`, link) };
}

/** "27 more alerts in the last minute: 20 node-lost, 7 task-lost" */
export function formatStormSummary(s: StormSummary): AlertMessage {
  const counts = describeKindCounts(s.byKind);
  const headline = `${s.count} more alert${s.count === 1 ? "" : "s"} in the last ${describeWindow(s.windowMs)}: ${counts}`;
  const samples = s.samples.map((x) => `- ${oneLine(x)}`);
  const more = s.count - s.samples.length;
  const textLines = [
    headline,
    "",
    "These were held back to keep the alert volume readable (storm collapsing or the per-recipient rate limit).",
    ...(samples.length ? ["", "First of them:", ...samples, ...(more > 0 ? [`…and ${more} more`] : [])] : []),
    "",
    `Window: ${new Date(s.windowStart).toISOString()} + ${formatDuration(s.windowMs)}`,
    "The full list is in `torca alerts`.",
  ];
  const html = [
    `<p>${escapeHtml(headline)}</p>`,
    samples.length ? `<ul>${s.samples.map((x) => `<li>${escapeHtml(oneLine(x))}</li>`).join("")}</ul>${more > 0 ? `<p>…and ${more} more</p>` : ""}` : "",
    `<p>The full list is in <code>torca alerts</code>.</p>`,
  ].join("\n");
  return {
    subject: oneLine(`[torca ${SEVERITY_TAG[s.severity]}] ${s.count} more alerts (${counts})`),
    text: textLines.join("\n"),
    html,
    short: truncateChars(`${SEVERITY_TAG[s.severity]} ${headline}`, SMS_MAX_CHARS),
  };
}

export function describeWindow(ms: number): string {
  if (ms === 60_000) return "minute";
  if (ms === 3_600_000) return "hour";
  return formatDuration(ms);
}

/** The SMS form: keeps the link whole when it fits in half a message, cutting the subject instead. */
function shortForm(head: string, link: string | undefined): string {
  if (!link || link.length > SMS_MAX_CHARS / 2) return truncateChars(head, SMS_MAX_CHARS);
  return `${truncateChars(head, SMS_MAX_CHARS - link.length - 1)} ${link}`;
}
