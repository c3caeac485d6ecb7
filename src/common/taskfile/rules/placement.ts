/** `placement:` how instances are spread over machines (a Torca extension). */
import { PLACEMENT_STRATEGIES, type PlacementPolicy } from "../../types.js";
import type { Checker } from "../checks.js";
import type { Path } from "../issues.js";
import { LIMITS, SCHEMA_KEYS, TASKFILE_DEFAULTS } from "../schema.js";

export function checkPlacement(c: Checker, v: unknown, path: Path): PlacementPolicy {
  const p: PlacementPolicy = { ...TASKFILE_DEFAULTS.placement };
  const s = c.section(v, path, SCHEMA_KEYS.placement);
  if (!s) return p;
  const stratV = s.get("strategy");
  if (stratV !== undefined) {
    const strategy = c.oneOf(stratV, s.at("strategy"), PLACEMENT_STRATEGIES);
    if (strategy !== undefined) p.strategy = strategy;
  }
  const maxV = s.get("maxPerNode");
  if (maxV !== undefined) {
    const m = c.int(maxV, s.at("maxPerNode"), 1, LIMITS.maxInstances);
    if (m !== undefined) p.maxPerNode = m;
  }
  return p;
}
