import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";

/**
 * The `zookeeper` native binding as Torca uses it: the addon's types, the C
 * client's return codes we branch on, and the create-mode flags.
 */

export interface ZkStat {
  czxid: number;
  mzxid: number;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  /** Times the node's ACL was set: 0 for a node left with the open ACL it was created with. */
  aversion: number;
  numChildren: number;
  ephemeralOwner: string;
  dataLength: number;
}

export type CreateMode = "persistent" | "ephemeral" | "sequential" | "ephemeral-sequential";

export type WatchEvent = "created" | "deleted" | "changed" | "child" | "notwatching" | "session";

/**
 * A watch callback, told the event and the path it fired for: a caller that
 * watches many nodes (the state copy's 100,000 tasks) passes one function for
 * all of them instead of a closure per node.
 */
export type Watcher = (ev: WatchEvent, path: string) => void;

export type PathCb = (rc: number, error: string, path: string) => void;
export type StatCb = (rc: number, error: string, stat: ZkStat) => void;
export type DataCb = (rc: number, error: string, stat: ZkStat, data: Buffer | null) => void;
export type ChildCb = (rc: number, error: string, children: string[]) => void;
export type Child2Cb = (rc: number, error: string, children: string[] | null, stat: ZkStat | null) => void;
export type VoidCb = (rc: number, error: string) => void;
/**
 * An ACL entry as the addon takes it. (Its a_get_acl is not used: on a node
 * that does not exist it frees a NULL ACL vector and the process dies.)
 */
export interface NativeAcl {
  perm: number;
  scheme: string;
  auth: string;
}

/**
 * The addon's own object; calls return the C client's code: anything but 0
 * means the callback will never run. Operations go to it directly: the JS
 * wrapper class around it formats every call's arguments with util.inspect
 * (for a logger we never set) before calling through, which cost measurable
 * CPU and garbage at thousands of operations per second.
 */
export interface NativeOps {
  a_create(path: string, data: Buffer, flags: number, cb: PathCb): number;
  a_exists(path: string, watch: boolean, cb: StatCb): number;
  a_get(path: string, watch: boolean, cb: DataCb): number;
  a_get_children(path: string, watch: boolean, cb: ChildCb): number;
  a_get_children2(path: string, watch: boolean, cb: Child2Cb): number;
  a_set(path: string, data: Buffer, version: number, cb: StatCb): number;
  a_delete_(path: string, version: number, cb: VoidCb): number;
  a_sync(path: string, cb: VoidCb): number;
  a_set_acl(path: string, version: number, acl: NativeAcl[], cb: VoidCb): number;
  /** Sent at once and again on every reconnect of this handle (the C client keeps it); a new handle needs it anew. */
  add_auth(scheme: string, auth: string, cb: VoidCb): number;
  timeout?: number;
  client_id?: string;
  client_password?: string;
}

export interface NativeClient extends EventEmitter {
  init(config: Record<string, unknown>): NativeClient;
  close(): void;
  data_as_buffer: boolean;
  /** The C client's state (NATIVE_CONNECTED); 0 once the handle is closed. */
  readonly state: number;
  native: NativeOps;
}

interface NativeCtor {
  new (config: Record<string, unknown>): NativeClient;
  ZOO_EPHEMERAL: number;
  ZOO_SEQUENCE: number;
  ZOO_EXPIRED_SESSION_STATE: number;
  ZOO_LOG_LEVEL_ERROR: number;
}

const require = createRequire(import.meta.url);
export const ZooKeeper = require("zookeeper/lib/zookeeper.js") as NativeCtor;

/** Return codes of the C client we branch on. */
export const ZK = {
  OK: 0,
  CONNECTIONLOSS: -4,
  OPERATIONTIMEOUT: -7,
  BADARGUMENTS: -8,
  NONODE: -101,
  NOAUTH: -102,
  BADVERSION: -103,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  INVALIDSTATE: -9,
  CLOSING: -116,
} as const;

export const MODE_FLAGS: Readonly<Record<CreateMode, number>> = Object.freeze({
  persistent: 0,
  ephemeral: ZooKeeper.ZOO_EPHEMERAL,
  sequential: ZooKeeper.ZOO_SEQUENCE,
  "ephemeral-sequential": ZooKeeper.ZOO_EPHEMERAL | ZooKeeper.ZOO_SEQUENCE,
});

/** The C client's "connected" state. */
export const NATIVE_CONNECTED = 3;

export type { SessionCredentials } from "../../common/schemas/coord.js";
