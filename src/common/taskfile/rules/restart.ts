/** `restart:` how often and how soon a failed task is restarted on its machine. */
import type { RestartPolicy } from "../../types.js";
import type { Checker } from "../checks.js";
import { describe } from "../describe.js";
import type { Path } from "../issues.js";
import { SCHEMA_KEYS, TASKFILE_DEFAULTS } from "../schema.js";

export function checkRestart(c: Checker, v: unknown, path: Path): RestartPolicy {
  const r: RestartPolicy = { ...TASKFILE_DEFAULTS.restart };
  const s = c.section(v, path, SCHEMA_KEYS.restart);
  if (!s) return r;
  const attemptsV = s.get("attempts");
  if (attemptsV !== undefined) r.attempts = c.int(attemptsV, s.at("attempts"), 0, 1_000_000) ?? r.attempts;
  const delayV = s.get("delay");
  let delayOk = true;
  if (delayV !== undefined) {
    const ms = c.duration(delayV, s.at("delay"));
    if (ms === undefined) delayOk = false;
    else r.delayMs = ms;
  }
  const backoffV = s.get("backoff");
  if (backoffV !== undefined) {
    if (typeof backoffV !== "number" || !Number.isFinite(backoffV)) c.add(s.at("backoff"), `must be a number (the delay multiplier, e.g. 2), got ${describe(backoffV)}`);
    else if (backoffV < 1) c.add(s.at("backoff"), `must be at least 1 (1 = constant delay), got ${backoffV}`);
    else r.backoff = backoffV;
  }
  const maxV = s.get("maxDelay");
  if (maxV !== undefined) {
    const ms = c.duration(maxV, s.at("maxDelay"));
    if (ms !== undefined && delayOk && ms < r.delayMs) c.add(s.at("maxDelay"), `must be at least delay (${r.delayMs}ms), got ${ms}ms`);
    else if (ms !== undefined) r.maxDelayMs = ms;
  } else if (delayOk && r.delayMs > r.maxDelayMs) {
    // A delay above the default cap: raise the cap rather than silently shortening the delay.
    r.maxDelayMs = r.delayMs;
  }
  return r;
}
