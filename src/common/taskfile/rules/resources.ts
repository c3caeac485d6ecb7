/** `resources:` cpu, memory and disk, in normalized units (cores, bytes), and devices (rules/devices.ts). */
import type { JobResources } from "../../types.js";
import { parseCpu } from "../../units.js";
import type { Checker } from "../checks.js";
import type { Path } from "../issues.js";
import { LIMITS, SCHEMA_KEYS, TASKFILE_DEFAULTS } from "../schema.js";
import { checkDevices } from "./devices.js";

export function checkResources(c: Checker, v: unknown, path: Path): JobResources {
  const res: JobResources = { ...TASKFILE_DEFAULTS.resources };
  const s = c.section(v, path, SCHEMA_KEYS.resources);
  if (!s) return res;
  const cpuV = s.get("cpu");
  if (cpuV !== undefined) {
    const cpu = parseCpu(cpuV);
    if (typeof cpu === "string") c.add(s.at("cpu"), cpu);
    else if (cpu > LIMITS.maxCpu) c.add(s.at("cpu"), `must be at most ${LIMITS.maxCpu} cores, got ${cpu}`);
    else res.cpu = cpu;
  }
  const memV = s.get("memory");
  if (memV !== undefined) {
    const mem = c.size(memV, s.at("memory"));
    if (mem !== undefined && mem < LIMITS.minMemory) {
      c.add(s.at("memory"), `must be at least 4MiB, got ${mem} bytes${typeof memV === "number" ? " (plain numbers are bytes; write e.g. 256MiB)" : ""}`);
    } else if (mem !== undefined) res.memory = mem;
  }
  const diskV = s.get("disk");
  if (diskV !== undefined) res.disk = c.size(diskV, s.at("disk")) ?? res.disk;
  const devicesV = s.get("devices");
  if (devicesV !== undefined) {
    const devices = checkDevices(c, devicesV, s.at("devices"));
    if (devices.length > 0) res.devices = devices;
  }
  return res;
}
