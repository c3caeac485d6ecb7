/** `service:` the name a job's ports are registered under in naming. */
import type { Checker } from "../checks.js";
import { describe } from "../describe.js";
import type { Path } from "../issues.js";
import { LIMITS, SCHEMA_KEYS } from "../schema.js";

const SERVICE_NAME_RE = /^[a-z0-9-]+(?:\.[a-z0-9-]+)*$/;

export function checkService(c: Checker, v: unknown, path: Path, hasPorts: boolean): { name: string } | undefined {
  const svc = c.section(v, path, SCHEMA_KEYS.service);
  if (!svc) return undefined;
  let service: { name: string } | undefined;
  const n = svc.required("name");
  if (n !== undefined) {
    const name = c.string(n, svc.at("name"));
    if (name !== undefined && name.length > LIMITS.maxServiceName) {
      c.add(svc.at("name"), `is ${name.length} characters long (at most ${LIMITS.maxServiceName}, as in DNS)`);
    } else if (name !== undefined && !SERVICE_NAME_RE.test(name)) {
      c.add(svc.at("name"), `${describe(name)} is not a valid service name: use lowercase letters, digits and "-", in dot-separated parts (e.g. web.frontend)`);
    } else if (name !== undefined) service = { name };
  }
  // Naming registers the job's ports; with none there is nothing to register.
  if (!hasPorts) c.add(path, "a service needs at least one port to register under its name (add ports:)");
  return service;
}
