/**
 * The top level of a task file: each field is read here or handed to the rule
 * of its section (one file per section in this folder). Cross-field rules that
 * span sections (a schedule makes a job batch, a service needs ports) are
 * decided here.
 */
import { PRIORITY_BATCH, PRIORITY_PROD, type JobSpec } from "../../types.js";
import { Checker, type SourceText } from "../checks.js";
import { describe, isPlainObject } from "../describe.js";
import type { Path, RawIssue } from "../issues.js";
import { LIMITS, SCHEMA_KEYS, TASKFILE_DEFAULTS } from "../schema.js";
import { checkAlloc } from "./alloc.js";
import { checkConstraints } from "./constraints.js";
import { checkDisconnect } from "./disconnect.js";
import { checkNotify } from "./notify.js";
import { checkPlacement } from "./placement.js";
import { checkPorts } from "./ports.js";
import { checkCommand, checkEnv, checkPackage } from "./program.js";
import { checkResources } from "./resources.js";
import { checkRestart } from "./restart.js";
import { checkSchedule } from "./schedule.js";
import { checkService } from "./service.js";
import { checkUpdate } from "./update.js";

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const JOB_TYPES = ["service", "batch"] as const;
const ISOLATIONS = ["lxc", "process"] as const;

export function checkDocument(value: unknown, sourceText: SourceText): { spec: JobSpec; issues: RawIssue[]; omitted: number } {
  const c = new Checker(sourceText);
  if (!isPlainObject(value)) {
    const what = Array.isArray(value) ? "a list" : describe(value);
    c.add([], `the top level must be a mapping of keys (name:, command:, ...), not ${what}`);
    return { spec: placeholderSpec(), issues: c.issues, omitted: 0 };
  }
  const spec = checkJob(c, value);
  return { spec, issues: c.issues, omitted: c.omitted };
}

/** Returned alongside issues only; never reaches a caller because issues make finish() throw. */
function placeholderSpec(): JobSpec {
  return {
    name: "", namespace: TASKFILE_DEFAULTS.namespace, type: "service", priority: PRIORITY_PROD, instances: 1, command: [], env: {},
    resources: { ...TASKFILE_DEFAULTS.resources }, constraints: [], ports: [], restart: { ...TASKFILE_DEFAULTS.restart },
    placement: { ...TASKFILE_DEFAULTS.placement },
  };
}

function checkJob(c: Checker, value: Record<string, unknown>): JobSpec {
  const spec = placeholderSpec();
  const s = c.section(value, [], SCHEMA_KEYS.job);
  if (!s) return spec;

  const nameV = s.required("name");
  if (nameV !== undefined) spec.name = checkName(c, nameV, s.at("name"), "name") ?? "";
  const nsV = s.get("namespace");
  if (nsV !== undefined) spec.namespace = checkName(c, nsV, s.at("namespace"), "namespace") ?? TASKFILE_DEFAULTS.namespace;

  // type: explicit, else batch when a schedule is given (cron runs complete), else service.
  const typeV = s.get("type");
  const explicitType = typeV === undefined ? undefined : c.oneOf(typeV, s.at("type"), JOB_TYPES);
  const scheduleV = s.get("schedule");
  spec.type = explicitType ?? (s.written("schedule") ? "batch" : "service");
  if (scheduleV !== undefined) {
    const schedule = checkSchedule(c, scheduleV, s.at("schedule"), explicitType);
    if (schedule !== undefined) spec.schedule = schedule;
  }

  const prioV = s.get("priority");
  spec.priority = spec.type === "service" ? PRIORITY_PROD : PRIORITY_BATCH;
  if (prioV !== undefined) spec.priority = checkPriority(c, prioV, s.at("priority")) ?? spec.priority;

  const instV = s.get("instances");
  if (instV !== undefined) spec.instances = c.int(instV, s.at("instances"), 1, LIMITS.maxInstances) ?? 1;

  const pkgV = s.get("package");
  if (pkgV !== undefined) {
    const ref = checkPackage(c, pkgV, s.at("package"));
    if (ref) {
      spec.package = ref.ref;
      spec.packageText = ref.text;
    }
  }

  // An alloc's members carry the commands; its resources and ports are the job's.
  const allocV = s.get("alloc");
  const alloc = allocV === undefined ? undefined : checkAlloc(c, allocV, s.at("alloc"));
  if (s.written("alloc")) {
    for (const key of ["command", "resources", "ports"] as const) {
      if (s.written(key)) c.add(s.at(key), `is not used together with alloc: give it per task under alloc.tasks${key === "resources" ? " (alloc.resources is what the tasks share)" : ""}`, "key");
    }
  }

  const cmdV = s.written("alloc") ? undefined : s.required("command");
  if (cmdV !== undefined) spec.command = checkCommand(c, cmdV, s.at("command"));

  const envV = s.get("env");
  if (envV !== undefined) spec.env = checkEnv(c, envV, s.at("env"));

  const resV = s.get("resources");
  if (resV !== undefined) spec.resources = checkResources(c, resV, s.at("resources"));

  const isoV = s.get("isolation");
  if (isoV !== undefined) {
    const iso = c.oneOf(isoV, s.at("isolation"), ISOLATIONS);
    if (iso === "lxc" && s.written("alloc")) c.add(s.at("isolation"), `allocs run under the process driver only: remove isolation (or use "process")`);
    else if (iso) spec.isolation = iso;
  }
  if (alloc) {
    spec.alloc = alloc.alloc;
    spec.resources = alloc.resources;
    spec.ports = alloc.ports;
    spec.isolation = "process";
  }

  const userV = s.get("user");
  if (userV !== undefined) {
    // The only value: absent already means the unprivileged task user, and other accounts are not a contract.
    if (userV === "root") spec.user = "root";
    else c.add(s.at("user"), `${describe(userV)} is not accepted: the only value is "root" (leave user out to run as the unprivileged task user)`);
  }

  const consV = s.get("constraints");
  if (consV !== undefined) spec.constraints = checkConstraints(c, consV, s.at("constraints"));

  const portsV = s.get("ports");
  if (portsV !== undefined) spec.ports = checkPorts(c, portsV, s.at("ports"));

  const svcV = s.get("service");
  if (svcV !== undefined) {
    const hasPorts = (s.written("ports") && !(Array.isArray(portsV) && portsV.length === 0)) || (alloc !== undefined && alloc.ports.length > 0);
    const service = checkService(c, svcV, s.at("service"), hasPorts);
    if (service) spec.service = service;
  }

  const restartV = s.get("restart");
  if (restartV !== undefined) spec.restart = checkRestart(c, restartV, s.at("restart"));

  const notifyV = s.get("notify");
  if (notifyV !== undefined) {
    const n = checkNotify(c, notifyV, s.at("notify"));
    if (n) spec.notify = n;
  }

  const placeV = s.get("placement");
  if (placeV !== undefined) spec.placement = checkPlacement(c, placeV, s.at("placement"));

  const disconnectV = s.get("disconnect");
  if (disconnectV !== undefined) {
    const d = checkDisconnect(c, disconnectV, s.at("disconnect"));
    if (d) spec.disconnect = d;
  }

  const reclaimableV = s.get("reclaimable");
  if (reclaimableV !== undefined) {
    if (typeof reclaimableV === "boolean") spec.reclaimable = reclaimableV;
    else c.add(s.at("reclaimable"), `${describe(reclaimableV)} is not a boolean: use true (batch tasks may run on capacity reserved but unused by prod tasks, docs/reclamation.md) or false`);
  }

  const updateV = s.get("update");
  if (updateV !== undefined) spec.update = checkUpdate(c, updateV, s.at("update"));

  return spec;
}

function checkName(c: Checker, v: unknown, path: Path, what: string): string | undefined {
  const name = c.string(v, path);
  if (name === undefined) return undefined;
  if (NAME_RE.test(name)) return name;
  const why = name.length === 0 ? "is empty" : name.length > 63 ? `is ${name.length} characters long (at most 63)` : `${describe(name)} is not a valid ${what}`;
  return c.add(path, `${why}: use 1-63 lowercase letters, digits and "-", not starting or ending with "-"`);
}

function checkPriority(c: Checker, v: unknown, path: Path): number | undefined {
  if (v === "prod") return PRIORITY_PROD;
  if (v === "batch") return PRIORITY_BATCH;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= LIMITS.maxPriority) return v;
  return c.add(path, `${describe(v)} is not a priority (use prod, batch, or an integer from 0 to ${LIMITS.maxPriority})`);
}
