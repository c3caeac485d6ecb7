/**
 * Issues as the rules find them (a field path and where the issue points) and
 * how a finished check becomes a result: every issue, sorted by position, at
 * most LIMITS.maxIssues of them, thrown as one ValidationError.
 */
import { ValidationError, type InputIssue } from "../errors.js";
import type { JobSpec } from "../types.js";
import { LIMITS } from "./schema.js";

export type PathSeg = string | number;
export type Path = readonly PathSeg[];

/**
 * Where an issue points: the offending value, the key itself (unknown or
 * reserved keys), or the enclosing mapping (a required key is missing).
 */
export type Anchor = "value" | "key" | "parent";

export interface RawIssue {
  path: Path;
  message: string;
  anchor: Anchor;
}

export function finish(
  result: { spec: JobSpec; issues: RawIssue[]; omitted: number },
  early: InputIssue[],
  locateIssue: ((r: RawIssue) => InputIssue) | undefined,
  source: string | undefined,
): JobSpec {
  const all = sortIssues([...early, ...result.issues.map((r) => (locateIssue ? locateIssue(r) : { field: formatPath(r.path), message: r.message }))]);
  if (all.length === 0) return result.spec;
  const shown = all.slice(0, LIMITS.maxIssues);
  const more = all.length - shown.length + result.omitted;
  if (more > 0) shown.push({ field: "", message: `and ${more} more problems like these (fix these first)` });
  throw new ValidationError(shown, source);
}

function sortIssues(issues: InputIssue[]): InputIssue[] {
  // Stable sort; issues without a position keep discovery order after the positioned ones.
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => {
      const la = a.issue.line ?? Infinity;
      const lb = b.issue.line ?? Infinity;
      if (la !== lb) return la - lb;
      const ca = a.issue.column ?? Infinity;
      const cb = b.issue.column ?? Infinity;
      if (ca !== cb) return ca - cb;
      return a.i - b.i;
    })
    .map((x) => x.issue);
}

/** `ports[1].check.timeout`; keys that are not identifiers are bracket-quoted: `env["A.B"]`. */
export function formatPath(path: Path): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
