/**
 * `alloc:` a tree container (docs/allocs.md): `resources` reserved as one
 * parent cgroup and `tasks`, the members, each run in a child cgroup under it
 * with optional caps of their own. The job's resources and ports are the
 * alloc's, so the scheduler places an alloc instance like any other.
 */
import { ALLOC_MEMBER_NAME_RE, type AllocMember, type AllocSpec, type PortSpec, type Resources } from "../../types.js";
import { formatBytes, parseCpu } from "../../units.js";
import type { Checker } from "../checks.js";
import { describe } from "../describe.js";
import type { Path } from "../issues.js";
import { LIMITS, SCHEMA_KEYS } from "../schema.js";
import { checkPorts } from "./ports.js";
import { checkCommand, checkEnv } from "./program.js";
import { checkResources } from "./resources.js";

export const MAX_ALLOC_MEMBERS = 32;

export interface CheckedAlloc {
  alloc: AllocSpec;
  resources: Resources;
  /** Every member's ports, in member order: the ports of the job. */
  ports: PortSpec[];
}

export function checkAlloc(c: Checker, v: unknown, path: Path): CheckedAlloc | undefined {
  const s = c.section(v, path, SCHEMA_KEYS.alloc);
  if (!s) return undefined;
  const resV = s.required("resources");
  const resources = checkResources(c, resV ?? {}, s.at("resources"));
  const tasksV = s.required("tasks");
  const items = tasksV === undefined ? undefined : c.list(tasksV, s.at("tasks"), `[{ name: app, command: ["bin/app"] }]`);
  if (!items) return undefined;
  if (items.length === 0) c.add(s.at("tasks"), `must list at least one task, e.g. [{ name: app, command: ["bin/app"] }]`);
  if (items.length > MAX_ALLOC_MEMBERS) c.add(s.at("tasks"), `has ${items.length} tasks (at most ${MAX_ALLOC_MEMBERS})`);

  const names = new Map<string, number>();
  const portOwner = new Map<string, string>();
  const staticOwner = new Map<number, string>();
  const members: AllocMember[] = [];
  const ports: PortSpec[] = [];
  items.forEach((item, i) => {
    const at: Path = [...s.at("tasks"), i];
    const m = c.section(item, at, SCHEMA_KEYS.allocTask);
    if (!m) return;
    const member: AllocMember = { name: "", command: [], env: {}, ports: [] };
    const nameV = m.required("name");
    const name = nameV === undefined ? undefined : c.string(nameV, m.at("name"));
    if (name !== undefined && !ALLOC_MEMBER_NAME_RE.test(name)) {
      c.add(m.at("name"), `${describe(name)} is not a valid task name: use 1-32 lowercase letters, digits and "-", not starting or ending with "-"`);
    } else if (name !== undefined && names.has(name)) {
      c.add(m.at("name"), `duplicate task name "${name}" (also used by alloc.tasks[${names.get(name)}])`);
    } else if (name !== undefined) {
      names.set(name, i);
      member.name = name;
    }
    const cmdV = m.required("command");
    if (cmdV !== undefined) member.command = checkCommand(c, cmdV, m.at("command"));
    const envV = m.get("env");
    if (envV !== undefined) member.env = checkEnv(c, envV, m.at("env"));
    const portsV = m.get("ports");
    if (portsV !== undefined) {
      checkPorts(c, portsV, m.at("ports")).forEach((p, j) => {
        if (!p.name) return;
        // One instance, one set of ports: every member sees every TORCA_PORT_<NAME>.
        const other = portOwner.get(p.name);
        if (other !== undefined) return c.add([...m.at("ports"), j, "name"], `port "${p.name}" is already declared by alloc task "${other}" (port names are shared by the whole alloc)`);
        const otherStatic = p.static === undefined ? undefined : staticOwner.get(p.static);
        if (otherStatic !== undefined) return c.add([...m.at("ports"), j, "static"], `static port ${p.static} is already used by alloc task "${otherStatic}"`);
        portOwner.set(p.name, member.name || `#${i}`);
        if (p.static !== undefined) staticOwner.set(p.static, member.name || `#${i}`);
        member.ports.push(p.name);
        ports.push(p);
      });
    }
    const capV = m.get("resources");
    if (capV !== undefined) {
      const cap = checkMemberCaps(c, capV, m.at("resources"), resV === undefined ? undefined : resources);
      if (cap) member.resources = cap;
    }
    members.push(member);
  });
  return { alloc: { tasks: members }, resources, ports };
}

/** A member's own caps: cpu and memory only, each at most the alloc's (a cap above it could never bind). */
function checkMemberCaps(c: Checker, v: unknown, path: Path, alloc: Resources | undefined): { cpu?: number; memory?: number } | undefined {
  const s = c.section(v, path, SCHEMA_KEYS.allocTaskResources);
  if (!s) return undefined;
  const cap: { cpu?: number; memory?: number } = {};
  const cpuV = s.get("cpu");
  if (cpuV !== undefined) {
    const cpu = parseCpu(cpuV);
    if (typeof cpu === "string") c.add(s.at("cpu"), cpu);
    else if (alloc && cpu > alloc.cpu) c.add(s.at("cpu"), `${cpu} cores is above the alloc's ${alloc.cpu} (a task's cap must fit in alloc.resources)`);
    else cap.cpu = cpu;
  }
  const memV = s.get("memory");
  if (memV !== undefined) {
    const mem = c.size(memV, s.at("memory"));
    if (mem !== undefined && mem < LIMITS.minMemory) c.add(s.at("memory"), `must be at least 4MiB, got ${mem} bytes`);
    else if (mem !== undefined && alloc && mem > alloc.memory) c.add(s.at("memory"), `${formatBytes(mem)} is above the alloc's ${formatBytes(alloc.memory)} (a task's cap must fit in alloc.resources)`);
    else if (mem !== undefined) cap.memory = mem;
  }
  return cap.cpu === undefined && cap.memory === undefined ? undefined : cap;
}
