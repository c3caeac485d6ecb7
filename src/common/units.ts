/**
 * Human units, parsed once at the border. Sizes: `256MiB`, `1GiB`, `512M`,
 * `100KB`, plain numbers are bytes. Durations: `500ms`, `5s`, `1m`, `2h`,
 * `1m30s`; plain numbers are milliseconds. CPU: cores as a number (`1.5`)
 * or millicores (`500m`).
 */

const SIZE_UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4,
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Returns bytes, or an error message. */
export function parseSize(v: unknown): number | string {
  if (typeof v === "number") return Number.isFinite(v) && v >= 0 ? Math.round(v) : "must be a non-negative size";
  if (typeof v !== "string") return "must be a size such as 256MiB or 1GiB";
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return `"${v}" is not a size (use e.g. 256MiB, 1GiB, 512M)`;
  const mult = SIZE_UNITS[m[2]!.toLowerCase()];
  if (mult === undefined) return `unknown size unit "${m[2]}" (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)`;
  return Math.round(Number(m[1]) * mult);
}

/** Returns milliseconds, or an error message. */
export function parseDuration(v: unknown): number | string {
  if (typeof v === "number") return Number.isFinite(v) && v >= 0 ? v : "must be a non-negative duration";
  if (typeof v !== "string") return "must be a duration such as 500ms, 5s, 1m";
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed !== s.length || s.length === 0) return `"${v}" is not a duration (use e.g. 500ms, 5s, 1m, 1m30s)`;
  return total;
}

/** Returns cores, or an error message. */
export function parseCpu(v: unknown): number | string {
  if (typeof v === "number") return Number.isFinite(v) && v > 0 ? v : "must be a positive number of cores";
  if (typeof v !== "string") return "must be a number of cores such as 0.5 or 2";
  const m = /^\s*(\d+(?:\.\d+)?)(m?)\s*$/.exec(v);
  if (!m) return `"${v}" is not a cpu amount (use cores such as 0.5, or millicores such as 500m)`;
  const n = Number(m[1]) / (m[2] ? 1000 : 1);
  return n > 0 ? n : "must be a positive number of cores";
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `n` bytes as a count of the largest unit it reaches: [count, unit index]. */
function scaleBytes(n: number): [number, number] {
  let i = 0;
  let x = n;
  while (x >= 1024 && i < BYTE_UNITS.length - 1) {
    x /= 1024;
    i++;
  }
  return [x, i];
}

export function formatBytes(n: number): string {
  const [x, i] = scaleBytes(n);
  return `${i === 0 ? x : x.toFixed(x >= 10 ? 0 : 1)}${BYTE_UNITS[i]}`;
}

/** `n` bytes shown as formatBytes does but rounded down, never up, with the bytes the text stands for. */
export function formatBytesAtMost(n: number): { bytes: number; text: string } {
  const [x, i] = scaleBytes(n);
  const shown = i === 0 ? Math.floor(x) : x >= 10 ? Math.floor(x) : Math.floor(x * 10) / 10;
  return { bytes: shown * 1024 ** i, text: `${shown}${BYTE_UNITS[i]}` };
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d`;
}
