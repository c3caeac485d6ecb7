/** Human output: aligned tables, relative times, colour only on a TTY. */
const useColor = process.stdout.isTTY && !process.env.NO_COLOR;

const COLORS: Record<string, number> = { green: 32, red: 31, yellow: 33, grey: 90, cyan: 36 };

export function color(name: keyof typeof COLORS, s: string): string {
  return useColor ? `\x1b[${COLORS[name]}m${s}\x1b[0m` : s;
}

const STATE_COLORS: Record<string, keyof typeof COLORS> = {
  running: "green", complete: "green", completed: "green", ready: "green",
  failed: "red", lost: "red", dead: "grey", killed: "grey",
  pending: "yellow", dispatched: "yellow", draining: "yellow", disconnected: "yellow",
};

export function state(s: string): string {
  const c = STATE_COLORS[s];
  return c ? color(c, s) : s;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

export function table(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c ?? "")));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").replace(ANSI, "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c + " ".repeat(widths[i]! - c.replace(ANSI, "").length))).join("  ");
  return [line(headers.map((h) => color("grey", h.toUpperCase()))), ...cells.map(line)].join("\n");
}

export function ago(ts: number | undefined, now = Date.now()): string {
  if (!ts) return "-";
  const s = Math.round((now - ts) / 1000);
  if (s < 0) return "in " + ago(now, ts).replace(/ ago$/, "");
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** A one-line progress bar, redrawn in place on a TTY. */
export function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY) return;
  const width = 30;
  const filled = total > 0 ? Math.round((done / total) * width) : 0;
  process.stderr.write(`\r${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`);
  if (done >= total) process.stderr.write("\n");
}
