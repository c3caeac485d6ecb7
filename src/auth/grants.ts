import { ForbiddenError } from "../common/errors.js";

/**
 * Who may do what. A token has one role; a role gives a fixed set of grants.
 * Namespaced tokens (read or submit, from the token store) hold their grants
 * in their namespaces only; every other token holds them cluster-wide.
 *
 * - read: see jobs, tasks, logs, events, alerts, metrics, nodes, names, packages
 * - submit: read, plus submit, update and kill jobs and push packages
 * - admin: everything (drain, tokens, audit, root tasks)
 * - agent: an agent's own credential: report its state, fetch blobs; nothing else
 * - manager: a manager's credential, verified by agents: dispatch, stop, read logs
 */
export type Role = "read" | "submit" | "admin" | "agent" | "manager";
export const ROLES: readonly Role[] = ["read", "submit", "admin", "agent", "manager"];

export type Grant = "read" | "submit" | "admin" | "report" | "fetch" | "control";

const GRANTS: Record<Role, readonly Grant[]> = {
  read: ["read", "fetch"],
  submit: ["read", "fetch", "submit"],
  admin: ["read", "fetch", "submit", "admin", "report", "control"],
  agent: ["report", "fetch"],
  manager: ["read", "control"],
};

/** The authenticated caller of a request. `namespaces` is "*" for cluster-wide tokens. */
export interface Caller {
  name: string;
  role: Role;
  namespaces: "*" | readonly string[];
  expiresAt?: number;
}

export function hasGrant(caller: Caller, grant: Grant): boolean {
  return GRANTS[caller.role].includes(grant);
}

export function describeCaller(c: Caller): string {
  return `token "${c.name}" (role ${c.role}${c.namespaces === "*" ? "" : `, namespace${c.namespaces.length === 1 ? "" : "s"} ${c.namespaces.join(", ")}`})`;
}

/** Throws 403 naming the token and the grant it lacks. */
export function requireGrant(caller: Caller, grant: Grant): void {
  if (!hasGrant(caller, grant)) throw new ForbiddenError(`${describeCaller(caller)} lacks ${grant}`);
}

export function seesNamespace(caller: Caller, namespace: string): boolean {
  return caller.namespaces === "*" || caller.namespaces.includes(namespace);
}

/** Throws 403 unless the caller holds `grant` in `namespace`. */
export function requireInNamespace(caller: Caller, grant: Grant, namespace: string): void {
  requireGrant(caller, grant);
  if (!seesNamespace(caller, namespace)) throw new ForbiddenError(`${describeCaller(caller)} lacks ${grant} on namespace "${namespace}"`);
}

/** Throws 403 unless the caller's grants are cluster-wide (e.g. for views that mix namespaces). */
export function requireClusterWide(caller: Caller, what: string): void {
  if (caller.namespaces !== "*") throw new ForbiddenError(`${describeCaller(caller)} lacks cluster-wide read: ${what} needs a token that is not limited to namespaces`);
}

/** The namespace a job id names (`NS:JOB`, or `JOB` in the default namespace). */
export function namespaceOfJobId(jobId: string): string {
  const colon = jobId.indexOf(":");
  return colon > 0 ? jobId.slice(0, colon) : "default";
}

/**
 * The namespace of the task an alert key is about (`KIND:TASK_ID:…`, e.g.
 * `task-failed:web/0:3` or `task-failed:team-a:web/0:3`), or undefined for
 * every other alert (node lost, failover, cron, storm summaries): those are
 * shown to cluster-wide tokens only.
 */
export function namespaceOfAlertKey(key: string): string | undefined {
  const m = /^[a-z-]+:(?:([A-Za-z0-9._-]+):)?[A-Za-z0-9._-]+\/\d+:/.exec(key);
  return m ? (m[1] ?? "default") : undefined;
}
