/** `disconnect:` what the job's tasks do when their agent is cut off from ZooKeeper and every manager. */
import type { Checker } from "../checks.js";
import { describe } from "../describe.js";
import type { Path } from "../issues.js";
import { SCHEMA_KEYS } from "../schema.js";

export function checkDisconnect(c: Checker, v: unknown, path: Path): { keepRunning: boolean } | undefined {
  const d = c.section(v, path, SCHEMA_KEYS.disconnect);
  if (!d) return undefined;
  const keep = d.get("keepRunning");
  if (keep === undefined) return { keepRunning: false };
  if (typeof keep === "boolean") return { keepRunning: keep };
  return c.add(d.at("keepRunning"), `${describe(keep)} is not a boolean: use true (keep running when cut off, accepting that the task may run twice once the primary migrates it) or false`);
}
