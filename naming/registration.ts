import { CoordinationError } from "../src/common/errors.js";
import { ZK, isZkCode, type ZkSession } from "../src/coord/zk.js";
import { decodeEndpointRecord, encodeEndpointRecord, namingPaths, type EndpointRecord } from "./layout.js";
import type { ServiceName } from "./names.js";

/**
 * Registrar helpers: create and remove one endpoint znode under a session.
 *
 * A task id names one znode, but two sessions can want it: an agent restarted
 * with a new session (its old session's node lingers until the old session
 * times out), or a task migrated to another machine while the old agent's
 * session is still alive. The rule: the higher attempt wins; on an equal
 * attempt the same node wins (its own earlier session). A loser yields and
 * leaves the node alone.
 */

export type RegisterOutcome = "created" | "unchanged" | "took-over" | "yielded";

/**
 * Whether a node's ephemeralOwner is this session. The binding gives both the
 * owner and the client's session id as hex strings without "0x" (so a
 * decimal parse would misread ids without letters); numbers are taken as ids.
 */
export function ownedBy(ephemeralOwner: string | number, sessionId: string): boolean {
  const norm = (v: string | number) => (typeof v === "number" ? v.toString(16) : v.toLowerCase().replace(/^0x/, "")).replace(/^0+/, "");
  const owner = norm(ephemeralOwner);
  return owner !== "" && owner === norm(sessionId);
}

function sameRecord(a: EndpointRecord, b: EndpointRecord): boolean {
  return a.host === b.host && a.port === b.port && a.task === b.task && a.node === b.node && a.job === b.job && a.attempt === b.attempt && JSON.stringify(a.ports) === JSON.stringify(b.ports);
}

function outranks(existing: EndpointRecord, mine: EndpointRecord): boolean {
  return existing.attempt > mine.attempt || (existing.attempt === mine.attempt && existing.node !== mine.node);
}

export async function registerEndpoint(zk: ZkSession, root: string, name: ServiceName, record: EndpointRecord): Promise<RegisterOutcome> {
  const paths = namingPaths(root);
  const path = paths.endpoint(name, record.task);
  let tookOver = false;
  // Each round either creates, or removes what stood in the way; a few rounds cover racing writers.
  for (let round = 0; round < 5; round++) {
    try {
      await zk.create(path, encodeEndpointRecord(record), "ephemeral");
      return tookOver ? "took-over" : "created";
    } catch (e) {
      if (isZkCode(e, ZK.NONODE)) {
        await zk.ensurePath(paths.service(name));
        continue;
      }
      if (!isZkCode(e, ZK.NODEEXISTS)) throw e;
    }
    const cur = await zk.getIfExists(path);
    if (!cur) continue;
    const existing = decodeEndpointRecord(cur.data, path);
    const mine = ownedBy(cur.stat.ephemeralOwner, zk.sessionId);
    if (mine && existing && sameRecord(existing, record)) return "unchanged";
    if (!mine && existing && outranks(existing, record)) return "yielded";
    try {
      await zk.delete(path, cur.stat.version);
      tookOver = true;
    } catch (e) {
      if (!isZkCode(e, ZK.BADVERSION)) throw e;
    }
  }
  throw new CoordinationError("create", path, ZK.NODEEXISTS, "endpoint node keeps changing under concurrent writers");
}

/**
 * Removes the endpoint if this session owns it (a node another session took
 * over is not ours to delete). With `pruneService`, an emptied service node
 * goes too, so names of jobs that are gone do not pile up; a concurrent
 * registrar that finds its parent missing simply creates it again.
 */
export async function deregisterEndpoint(zk: ZkSession, root: string, name: ServiceName, taskId: string, opts: { pruneService?: boolean } = {}): Promise<boolean> {
  const paths = namingPaths(root);
  const path = paths.endpoint(name, taskId);
  const stat = await zk.exists(path);
  let removed = false;
  if (stat && ownedBy(stat.ephemeralOwner, zk.sessionId)) {
    try {
      await zk.delete(path, stat.version);
      removed = true;
    } catch (e) {
      if (!isZkCode(e, ZK.BADVERSION)) throw e;
    }
  }
  if (opts.pruneService) {
    await zk.delete(paths.service(name)).catch((e: unknown) => {
      if (!isZkCode(e, ZK.NOTEMPTY)) throw e;
    });
  }
  return removed;
}
