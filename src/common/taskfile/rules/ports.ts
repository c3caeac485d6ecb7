/** `ports:` named ports, optionally static, each with an optional health check. */
import type { HealthCheck, PortSpec } from "../../types.js";
import type { Checker } from "../checks.js";
import { describe } from "../describe.js";
import type { Path } from "../issues.js";
import { SCHEMA_KEYS, TASKFILE_DEFAULTS } from "../schema.js";

const PORT_NAME_RE = /^[a-z][a-z0-9_]{0,30}$/;
const CHECK_TYPES = ["http", "tcp"] as const;

export function checkPorts(c: Checker, v: unknown, path: Path): PortSpec[] {
  const items = c.list(v, path, `[{ name: http }]`);
  if (!items) return [];
  const out: PortSpec[] = [];
  const names = new Map<string, number>();
  const statics = new Map<number, number>();
  items.forEach((item, i) => {
    const s = c.section(item, [...path, i], SCHEMA_KEYS.port);
    if (!s) return;
    const nameV = s.required("name");
    let name = nameV === undefined ? undefined : c.string(nameV, s.at("name"));
    if (name !== undefined && !PORT_NAME_RE.test(name)) {
      c.add(s.at("name"), `${describe(name)} is not a valid port name: start with a lowercase letter, then up to 30 lowercase letters, digits or _ (it becomes TORCA_PORT_<NAME>)`);
      name = undefined;
    } else if (name !== undefined && names.has(name)) {
      c.add(s.at("name"), `duplicate port name "${name}" (also used by ports[${names.get(name)}])`);
      name = undefined;
    } else if (name !== undefined) names.set(name, i);
    const port: PortSpec = { name: name ?? "" };

    const staticV = s.get("static");
    if (staticV !== undefined) {
      const p = c.int(staticV, s.at("static"), 1, 65535);
      if (p !== undefined && statics.has(p)) c.add(s.at("static"), `static port ${p} is already used by ports[${statics.get(p)}]`);
      else if (p !== undefined) {
        statics.set(p, i);
        port.static = p;
      }
    }
    const checkV = s.get("check");
    if (checkV !== undefined) {
      const hc = checkHealth(c, checkV, s.at("check"));
      if (hc) port.check = hc;
    }
    out.push(port);
  });
  return out;
}

function checkHealth(c: Checker, v: unknown, path: Path): HealthCheck | undefined {
  const s = c.section(v, path, SCHEMA_KEYS.check);
  if (!s) return undefined;
  const typeV = s.required("type");
  const type = typeV === undefined ? undefined : c.oneOf(typeV, s.at("type"), CHECK_TYPES);
  const d = TASKFILE_DEFAULTS.check;
  const hc: HealthCheck = { type: type ?? "tcp", intervalMs: d.intervalMs, timeoutMs: d.timeoutMs, failures: d.failures };

  const pathV = s.get("path");
  if (type === "http") hc.path = d.path;
  if (pathV !== undefined) {
    const p = c.string(pathV, s.at("path"));
    if (p !== undefined && type === "tcp") c.add(s.at("path"), `is only for http checks (this check is tcp)`);
    else if (p !== undefined && !p.startsWith("/")) c.add(s.at("path"), `must start with "/", got ${describe(p)}`);
    else if (p !== undefined) hc.path = p;
  }

  const intervalV = s.get("interval");
  let intervalOk = true;
  if (intervalV !== undefined) {
    const ms = c.duration(intervalV, s.at("interval"));
    if (ms === 0) c.add(s.at("interval"), "must be greater than 0");
    if (ms === undefined || ms === 0) intervalOk = false;
    else hc.intervalMs = ms;
  }
  const timeoutV = s.get("timeout");
  let timeoutOk = true;
  if (timeoutV !== undefined) {
    const ms = c.duration(timeoutV, s.at("timeout"));
    if (ms === 0) c.add(s.at("timeout"), "must be greater than 0");
    if (ms === undefined || ms === 0) timeoutOk = false;
    else hc.timeoutMs = ms;
  }
  // A timeout as long as the interval would let probes pile up; point at whichever the user wrote.
  if (intervalOk && timeoutOk && hc.timeoutMs >= hc.intervalMs) {
    if (timeoutV !== undefined) c.add(s.at("timeout"), `must be less than interval (${hc.intervalMs}ms), got ${hc.timeoutMs}ms`);
    else c.add(s.at("interval"), `must be greater than timeout (${hc.timeoutMs}ms, the default), got ${hc.intervalMs}ms`);
  }
  const failV = s.get("failures");
  if (failV !== undefined) hc.failures = c.int(failV, s.at("failures"), 1, 1000) ?? hc.failures;
  return hc;
}
