import { serviceName, type ServiceName } from "./names.js";

/**
 * The naming subtree in ZooKeeper:
 *
 *   <root>/naming/<namespace>/<service>/<encodeURIComponent(taskId)>   (ephemeral)
 *
 * Namespace and service nodes are persistent and empty. Endpoint nodes are
 * ephemeral, owned by the session of the agent that runs the task, and
 * immutable: a change is a delete followed by a create. Readers therefore only
 * need child watches, never data watches.
 */

/** What an endpoint znode holds (JSON). `attempt` lets a newer run of a task take over a stale node. */
export interface EndpointRecord {
  host: string;
  /** The first port's host port. */
  port: number;
  /** Every port of the task: name → host port. */
  ports: Record<string, number>;
  /** Task id, `job/index`. */
  task: string;
  /** The node (agent id) running the task. */
  node: string;
  job: string;
  attempt: number;
  registeredAt: number;
}

/** The contract's endpoint shape (DESIGN.md), plus the job. */
export interface Endpoint {
  host: string;
  port: number;
  ports: Record<string, number>;
  task: string;
  node: string;
  job: string;
}

export function namingPaths(root: string) {
  const base = `${root}/naming`;
  return {
    base,
    namespace: (ns: string) => `${base}/${ns}`,
    service: (n: ServiceName) => `${base}/${n.namespace}/${n.service}`,
    endpoint: (n: ServiceName, taskId: string) => `${base}/${n.namespace}/${n.service}/${encodeTaskId(taskId)}`,
  };
}
export type NamingPaths = ReturnType<typeof namingPaths>;

/** Task ids contain "/" (job/index) and ":" (ns:job); a znode name may not contain "/". */
export function encodeTaskId(taskId: string): string {
  return encodeURIComponent(taskId);
}

export function decodeTaskId(child: string): string {
  return decodeURIComponent(child);
}

/** The service a path under `<root>/naming` names, or undefined when it is not a service path. */
export function serviceOfPath(root: string, path: string): ServiceName | undefined {
  const prefix = `${root}/naming/`;
  if (!path.startsWith(prefix)) return undefined;
  const parts = path.slice(prefix.length).split("/");
  if (parts.length !== 2) return undefined;
  try {
    return serviceName(parts[0]!, parts[1]!);
  } catch {
    return undefined;
  }
}

export function encodeEndpointRecord(r: EndpointRecord): Buffer {
  return Buffer.from(JSON.stringify(r));
}

function isPortMap(v: unknown): v is Record<string, number> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  return Object.values(v).every((p) => Number.isInteger(p) && (p as number) > 0 && (p as number) < 65536);
}

/** Parses znode data; undefined for anything that is not a well-formed record (a reader skips it). */
export function decodeEndpointRecord(data: Buffer): EndpointRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(data.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.host !== "string" || !o.host) return undefined;
  if (!Number.isInteger(o.port) || (o.port as number) <= 0 || (o.port as number) >= 65536) return undefined;
  if (!isPortMap(o.ports)) return undefined;
  if (typeof o.task !== "string" || typeof o.node !== "string" || typeof o.job !== "string") return undefined;
  return {
    host: o.host,
    port: o.port as number,
    ports: { ...o.ports },
    task: o.task,
    node: o.node,
    job: o.job,
    attempt: Number.isInteger(o.attempt) ? (o.attempt as number) : 0,
    registeredAt: typeof o.registeredAt === "number" ? o.registeredAt : 0,
  };
}

export function toEndpoint(r: EndpointRecord): Endpoint {
  return { host: r.host, port: r.port, ports: r.ports, task: r.task, node: r.node, job: r.job };
}

/** Stable order (by task id) so equal sets compare equal and round-robin is predictable. */
export function sortEndpoints(eps: Endpoint[]): Endpoint[] {
  return [...eps].sort((a, b) => (a.task < b.task ? -1 : a.task > b.task ? 1 : a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port));
}
