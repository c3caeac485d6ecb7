import { formatBytes } from "../../common/units.js";
import type { Resources } from "../../common/types.js";

/** Escapes text for HTML element content and attribute values. */
export function esc(s: unknown): string {
  return String(s ?? "").replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON for a `<script type="application/json">` block: `<` is escaped so a
 * string such as `</script>` inside user data cannot end the block.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** A URL path segment; job ids may contain ":" (namespace) which is fine in paths. */
export function seg(s: string): string {
  return encodeURIComponent(s);
}

export function fmtTime(ms: number | undefined): string {
  if (!ms) return "";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function fmtCpu(cores: number): string {
  return `${Math.round(cores * 100) / 100} cores`;
}

export function fmtResources(r: Resources): string {
  return `${fmtCpu(r.cpu)}, ${formatBytes(r.memory)} memory, ${formatBytes(r.disk)} disk`;
}

/** A labelled horizontal bar of used against total (the width is a CSS class step, so no inline styles). */
export function bar(label: string, used: number, total: number, show: (n: number) => string): string {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  const step = Math.round(pct / 5) * 5;
  const level = pct >= 90 ? " hot" : pct >= 70 ? " warm" : "";
  return `<div class="bar-row"><span class="bar-label">${esc(label)}</span><span class="bar${level}" role="meter" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct.toFixed(0)}"><span class="fill w${step}"></span></span><span class="bar-text">${esc(show(used))} of ${esc(show(total))} (${pct.toFixed(0)}%)</span></div>`;
}

/** A table inside a horizontally scrolling wrapper (phone width). */
export function table(head: string[], rows: string[], attrs = ""): string {
  return `<div class="scroll"><table${attrs}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
}

export function badge(state: string): string {
  return `<span class="badge s-${esc(state)}">${esc(state)}</span>`;
}

/** Counts of values, in the order of `keys` first, then any others. */
export function countBy<T>(items: Iterable<T>, key: (t: T) => string, keys: readonly string[] = []): [string, number][] {
  const m = new Map<string, number>(keys.map((k) => [k, 0]));
  for (const it of items) {
    const k = key(it);
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m.entries()];
}

/** An href for a URL from cluster state: only http(s), so a bad value cannot become a `javascript:` link. */
export function safeHref(url: string): string {
  return /^https?:\/\//i.test(url) ? esc(url) : "#";
}
