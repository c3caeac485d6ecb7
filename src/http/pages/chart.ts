import { esc, fmtTime } from "./html.js";

/**
 * A small server-rendered SVG line chart: one series over time, and
 * optionally a horizontal line for a limit (a task's request, a node's
 * capacity). Text goes through `esc`; the output is a standalone SVG element
 * (namespace declared), so it can be embedded in a page or served alone as
 * image/svg+xml and swapped in by the client script. Presentation attributes
 * only (no style attributes or scripts), so the pages' CSP holds.
 */

export interface ChartPoint {
  at: number;
  value: number;
}

export interface ChartOptions {
  /** The element's id (the client script refreshes the chart by it). */
  id: string;
  title: string;
  points: readonly ChartPoint[];
  /** A horizontal line, e.g. `{ label: "request", value: 0.5 }`. */
  limit?: { label: string; value: number };
  format: (value: number) => string;
  /** Shown instead of a line when there are no points. */
  empty: string;
  width?: number;
  height?: number;
}

const PAD = { left: 8, right: 8, top: 22, bottom: 18 };
const LINE = "#2563eb";
const LIMIT = "#dc2626";
const MUTED = "#6b7280";

function round(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/** The chart as an `<svg>` element. `data-samples` and `data-last` say what it shows (for tests and scripts). */
export function lineChart(o: ChartOptions): string {
  const w = o.width ?? 600;
  const h = o.height ?? 160;
  const plotW = w - PAD.left - PAD.right;
  const plotH = h - PAD.top - PAD.bottom;
  const last = o.points[o.points.length - 1];
  const open = `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="${esc(o.id)}" viewBox="0 0 ${w} ${h}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-label="${esc(o.title)}" data-samples="${o.points.length}"${last ? ` data-last="${esc(last.value)}"` : ""}>`;
  const title = `<title>${esc(o.title)}</title><text x="${PAD.left}" y="14" font-size="12" font-weight="600" fill="currentColor">${esc(o.title)}${last ? ` · now ${esc(o.format(last.value))}` : ""}</text>`;
  const frame = `<rect x="${PAD.left}" y="${PAD.top}" width="${plotW}" height="${plotH}" fill="none" stroke="${MUTED}" stroke-width="0.5"/>`;
  if (o.points.length === 0) {
    return `${open}${title}${frame}<text x="${w / 2}" y="${PAD.top + plotH / 2}" font-size="12" text-anchor="middle" fill="${MUTED}">${esc(o.empty)}</text></svg>`;
  }
  const values = o.points.map((p) => p.value);
  const top = Math.max(...values, o.limit?.value ?? 0) * 1.1 || 1;
  const t0 = o.points[0]!.at;
  const t1 = last!.at;
  const span = t1 - t0;
  const x = (at: number) => PAD.left + (span > 0 ? ((at - t0) / span) * plotW : plotW / 2);
  const y = (v: number) => PAD.top + plotH - (Math.max(0, v) / top) * plotH;
  const line =
    o.points.length === 1
      ? `<circle cx="${round(x(t0))}" cy="${round(y(last!.value))}" r="2.5" fill="${LINE}"/>`
      : `<polyline fill="none" stroke="${LINE}" stroke-width="1.5" points="${o.points.map((p) => `${round(x(p.at))},${round(y(p.value))}`).join(" ")}"/>`;
  const limit = o.limit
    ? `<line class="limit" x1="${PAD.left}" x2="${PAD.left + plotW}" y1="${round(y(o.limit.value))}" y2="${round(y(o.limit.value))}" stroke="${LIMIT}" stroke-width="1" stroke-dasharray="4 3"/><text x="${PAD.left + plotW - 2}" y="${round(y(o.limit.value) - 3)}" font-size="10" text-anchor="end" fill="${LIMIT}">${esc(`${o.limit.label} ${o.format(o.limit.value)}`)}</text>`
    : "";
  const scale = `<text x="${PAD.left + 2}" y="${PAD.top + 10}" font-size="10" fill="${MUTED}">${esc(o.format(top))}</text>`;
  const axis = `<text x="${PAD.left}" y="${h - 4}" font-size="10" fill="${MUTED}">${esc(fmtTime(t0))}</text><text x="${PAD.left + plotW}" y="${h - 4}" font-size="10" text-anchor="end" fill="${MUTED}">${esc(fmtTime(t1))}</text>`;
  return `${open}${title}${frame}${scale}${limit}${line}${axis}</svg>`;
}
