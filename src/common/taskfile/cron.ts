/** The cron subset a `schedule` may use. */
import { describe } from "./describe.js";

/**
 * Validates the cron subset we promise: 5 fields (minute hour day-of-month
 * month day-of-week) or 6 (seconds first); each field a comma list of `*`,
 * `N`, `N-M`, optionally `/step`; month and weekday names (jan, mon-fri).
 * Everything accepted here is accepted by node-schedule (cron-parser), which
 * also accepts more (L, #, ?, N/step); keeping to the common subset means a
 * schedule never depends on one library's extensions. Returns a message or
 * undefined when valid.
 */
export function checkCron(expr: string): string | undefined {
  const fields = expr.trim().split(/\s+/).filter((f) => f.length > 0);
  if (fields.length !== 5 && fields.length !== 6) {
    return `${describe(expr)} is not a cron expression: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${fields.length}`;
  }
  const specs = fields.length === 6 ? [CRON_FIELDS.second, ...CRON_FIELDS.five] : CRON_FIELDS.five;
  const sets: Set<number>[] = [];
  for (let i = 0; i < fields.length; i++) {
    const r = cronField(fields[i]!, specs[i]!);
    if (typeof r === "string") return `${specs[i]!.label} field ${JSON.stringify(fields[i])}: ${r}`;
    sets.push(r);
  }
  // Standard cron ORs day-of-month and day-of-week when both are restricted, so only a
  // restricted day-of-month with an unrestricted day-of-week can make a schedule that never fires.
  const off = fields.length === 6 ? 1 : 0;
  const dom = fields[off + 2]!;
  const dow = fields[off + 4]!;
  if (dom !== "*" && (dow === "*" || dow === "?")) {
    const days = sets[off + 2]!;
    const months = sets[off + 3]!;
    const fires = [...months].some((m) => [...days].some((d) => d <= DAYS_IN_MONTH[m - 1]!));
    if (!fires) return `${describe(expr)} never fires: none of the months has those days`;
  }
  return undefined;
}

interface CronFieldSpec {
  label: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** Value of names[0]. */
  namesBase?: number;
}

const CRON_FIELDS = {
  second: { label: "seconds", min: 0, max: 59 },
  five: [
    { label: "minute", min: 0, max: 59 },
    { label: "hour", min: 0, max: 23 },
    { label: "day-of-month", min: 1, max: 31 },
    { label: "month", min: 1, max: 12, names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], namesBase: 1 },
    // 7 is Sunday too, as in most crons.
    { label: "day-of-week", min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"], namesBase: 0 },
  ],
} satisfies { second: CronFieldSpec; five: CronFieldSpec[] };

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function cronValue(text: string, spec: CronFieldSpec): number | string {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n < spec.min || n > spec.max ? `${n} is out of range ${spec.min}-${spec.max}` : n;
  }
  const idx = spec.names?.indexOf(text.toLowerCase()) ?? -1;
  if (idx >= 0) return idx + (spec.namesBase ?? 0);
  return `${JSON.stringify(text)} is not a number${spec.names ? ` or a name (${spec.names[0]}, ${spec.names[1]}, ...)` : ""}`;
}

function cronField(field: string, spec: CronFieldSpec): Set<number> | string {
  const out = new Set<number>();
  for (const part of field.split(",")) {
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(part);
    if (!m) return `${JSON.stringify(part)} is not *, N, N-M or one of those with /step`;
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (step < 1) return "step must be at least 1";
    let lo: number;
    let hi: number;
    if (m[1] === "*") {
      lo = spec.min;
      hi = spec.max;
    } else {
      const range = m[1]!.split("-");
      if (range.length > 2) return `${JSON.stringify(part)} is not *, N, N-M or one of those with /step`;
      const a = cronValue(range[0]!, spec);
      if (typeof a === "string") return a;
      if (range.length === 1 && m[2] !== undefined) return `${JSON.stringify(part)}: a step needs a range (use */${step} or ${a}-${spec.max}/${step})`;
      const b = range.length === 2 ? cronValue(range[1]!, spec) : a;
      if (typeof b === "string") return b;
      if (a > b) return `range ${m[1]} goes backwards`;
      lo = a;
      hi = b;
    }
    for (let x = lo; x <= hi; x += step) out.add(x);
  }
  return out;
}
