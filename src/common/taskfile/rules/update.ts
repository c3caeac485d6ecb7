/** `update:` how a new version of a service rolls out (deployment/ carries it out). */
import type { UpdatePolicy } from "../../types.js";
import type { Checker } from "../checks.js";
import { describe } from "../describe.js";
import type { Path } from "../issues.js";
import { LIMITS, SCHEMA_KEYS, TASKFILE_DEFAULTS } from "../schema.js";

const DURATIONS = [
  ["minHealthyTime", "minHealthyTimeMs"],
  ["healthyDeadline", "healthyDeadlineMs"],
  ["progressDeadline", "progressDeadlineMs"],
  ["drainDelay", "drainDelayMs"],
  ["stagger", "staggerMs"],
] as const;

export function checkUpdate(c: Checker, v: unknown, path: Path): UpdatePolicy {
  const u: UpdatePolicy = { ...TASKFILE_DEFAULTS.update };
  const s = c.section(v, path, SCHEMA_KEYS.update);
  if (!s) return u;
  const maxParallelV = s.get("maxParallel");
  if (maxParallelV !== undefined) u.maxParallel = c.int(maxParallelV, s.at("maxParallel"), 1, LIMITS.maxInstances) ?? u.maxParallel;
  const maxSurgeV = s.get("maxSurge");
  if (maxSurgeV !== undefined) u.maxSurge = c.int(maxSurgeV, s.at("maxSurge"), 0, LIMITS.maxInstances) ?? u.maxSurge;
  const canaryV = s.get("canary");
  if (canaryV !== undefined) u.canary = c.int(canaryV, s.at("canary"), 0, LIMITS.maxInstances) ?? u.canary;
  for (const [key, field] of DURATIONS) {
    const d = s.get(key);
    if (d !== undefined) u[field] = c.duration(d, s.at(key)) ?? u[field];
  }
  for (const key of ["autoPromote", "autoRevert"] as const) {
    const b = s.get(key);
    if (b === undefined) continue;
    if (typeof b === "boolean") u[key] = b;
    else c.add(s.at(key), `${describe(b)} is not a boolean: use true or false`);
  }
  if (u.healthyDeadlineMs <= u.minHealthyTimeMs) c.add(s.at("healthyDeadline"), `must be longer than minHealthyTime (${u.minHealthyTimeMs}ms), got ${u.healthyDeadlineMs}ms`);
  if (u.progressDeadlineMs < u.healthyDeadlineMs) c.add(s.at("progressDeadline"), `must be at least healthyDeadline (${u.healthyDeadlineMs}ms), got ${u.progressDeadlineMs}ms`);
  return u;
}
