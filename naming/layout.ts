import type { z } from "zod";
import { readJsonIfValid } from "../src/common/json.js";
import { EndpointRecordSchema } from "../src/common/schemas/naming.js";
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

/**
 * What an endpoint znode holds (JSON): host, `port` (the first port's host
 * port), `ports` (name → host port), `task` (`job/index`), `node` (the agent
 * running it), `job`, and `attempt`, which lets a newer run of a task take
 * over a stale node.
 */
export type EndpointRecord = z.infer<typeof EndpointRecordSchema>;

/** The contract's endpoint shape (docs/contracts.md, "Naming"), plus the job. */
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

/** Parses znode data; undefined for anything that is not a well-formed record (a reader skips it). */
export function decodeEndpointRecord(data: Buffer, where = "endpoint znode"): EndpointRecord | undefined {
  return readJsonIfValid(EndpointRecordSchema, data, where);
}

export function toEndpoint(r: EndpointRecord): Endpoint {
  return { host: r.host, port: r.port, ports: r.ports, task: r.task, node: r.node, job: r.job };
}

/** Stable order (by task id) so equal sets compare equal and round-robin is predictable. */
export function sortEndpoints(eps: Endpoint[]): Endpoint[] {
  return [...eps].sort((a, b) => (a.task < b.task ? -1 : a.task > b.task ? 1 : a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port));
}
