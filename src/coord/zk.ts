import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { CoordinationError, UnavailableError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

/**
 * A typed promise API over the `zookeeper` native binding.
 *
 * Session semantics matter for fencing: the binding fires `connect` again after
 * every reconnect of the *same* session, and `close` with state -112 when the
 * session expired. We surface these as three distinct events:
 *   - `disconnected`: connection lost, session may still be alive (ops queue)
 *   - `reconnected`:  same session is back (ephemerals and watches intact)
 *   - `expired`:      the session is gone for good; this object is dead
 * Once expired (or closed), every operation rejects; nothing is retried on a
 * new session behind the caller's back, because a new session would silently
 * drop the fence that the old one held.
 */

export interface ZkStat {
  czxid: number;
  mzxid: number;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  numChildren: number;
  ephemeralOwner: string;
  dataLength: number;
}

export type CreateMode = "persistent" | "ephemeral" | "sequential" | "ephemeral-sequential";

export type WatchEvent = "created" | "deleted" | "changed" | "child" | "notwatching" | "session";

type WatchCb = (type: number, state: number, path: string) => void;
type PathCb = (rc: number, error: string, path: string) => void;
type StatCb = (rc: number, error: string, stat: ZkStat) => void;
type DataCb = (rc: number, error: string, stat: ZkStat, data: Buffer | null) => void;
type ChildCb = (rc: number, error: string, children: string[]) => void;
type VoidCb = (rc: number, error: string) => void;

interface NativeClient extends EventEmitter {
  init(config: Record<string, unknown>): NativeClient;
  close(): void;
  data_as_buffer: boolean;
  a_create(path: string, data: Buffer, flags: number, cb: PathCb): void;
  a_exists(path: string, watch: boolean, cb: StatCb): void;
  aw_exists(path: string, watchCb: WatchCb, cb: StatCb): void;
  a_get(path: string, watch: boolean, cb: DataCb): void;
  aw_get(path: string, watchCb: WatchCb, cb: DataCb): void;
  a_get_children(path: string, watch: boolean, cb: ChildCb): void;
  aw_get_children(path: string, watchCb: WatchCb, cb: ChildCb): void;
  a_set(path: string, data: Buffer, version: number, cb: StatCb): void;
  a_delete_(path: string, version: number, cb: VoidCb): void;
  a_sync(path: string, cb: VoidCb): void;
  native: { timeout?: number; client_id?: string; client_password?: string };
}

interface NativeCtor {
  new (config: Record<string, unknown>): NativeClient;
  ZOO_EPHEMERAL: number;
  ZOO_SEQUENCE: number;
  ZOO_CREATED_EVENT: number;
  ZOO_DELETED_EVENT: number;
  ZOO_CHANGED_EVENT: number;
  ZOO_CHILD_EVENT: number;
  ZOO_SESSION_EVENT: number;
  ZOO_NOTWATCHING_EVENT: number;
  ZOO_EXPIRED_SESSION_STATE: number;
  ZOO_LOG_LEVEL_ERROR: number;
}

const require = createRequire(import.meta.url);
const ZooKeeper = require("zookeeper/lib/zookeeper.js") as NativeCtor;

/** Return codes of the C client we branch on. */
export const ZK = {
  OK: 0,
  CONNECTIONLOSS: -4,
  OPERATIONTIMEOUT: -7,
  NONODE: -101,
  BADVERSION: -103,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  INVALIDSTATE: -9,
  CLOSING: -116,
} as const;

const MODE_FLAGS: Record<CreateMode, number> = {
  persistent: 0,
  ephemeral: ZooKeeper.ZOO_EPHEMERAL,
  sequential: ZooKeeper.ZOO_SEQUENCE,
  "ephemeral-sequential": ZooKeeper.ZOO_EPHEMERAL | ZooKeeper.ZOO_SEQUENCE,
};

function eventName(type: number): WatchEvent {
  switch (type) {
    case ZooKeeper.ZOO_CREATED_EVENT:
      return "created";
    case ZooKeeper.ZOO_DELETED_EVENT:
      return "deleted";
    case ZooKeeper.ZOO_CHANGED_EVENT:
      return "changed";
    case ZooKeeper.ZOO_CHILD_EVENT:
      return "child";
    case ZooKeeper.ZOO_NOTWATCHING_EVENT:
      return "notwatching";
    default:
      return "session";
  }
}

/**
 * The C client also hands connection-state changes to every registered watcher,
 * without consuming the watch; passing them on would make callers re-arm and
 * pile up duplicate watches on every reconnect. Only node events go through.
 */
function dataWatch(watch: (ev: WatchEvent) => void): WatchCb {
  return (type) => {
    if (type === ZooKeeper.ZOO_SESSION_EVENT) return;
    watch(eventName(type));
  };
}

export interface ZkOptions {
  /** Connect string, e.g. `127.0.0.1:2181,127.0.0.1:2182`. */
  connect: string;
  /** Requested session timeout (ZooKeeper may raise it to its minimum, 2×tickTime). */
  sessionTimeoutMs: number;
  /** Give up connecting after this long (default: 3× session timeout, at least 10 s). */
  connectTimeoutMs?: number;
  /**
   * Re-attach to an earlier session (an agent restarted within the session
   * timeout keeps its ephemeral nodes, so the manager sees no flap). If that
   * session already expired, connect() rejects and the caller starts afresh.
   */
  resume?: SessionCredentials;
  logger?: Logger;
}

export interface SessionCredentials {
  clientId: string;
  password: string;
}

export interface ZkSessionEvents {
  disconnected: [];
  reconnected: [];
  expired: [];
  closed: [];
}

export class ZkSession extends EventEmitter<ZkSessionEvents> {
  private state: "connected" | "disconnected" | "expired" | "closed" = "connected";

  private constructor(private readonly client: NativeClient, private readonly log?: Logger) {
    super();
    client.on("connect", () => {
      if (this.state === "disconnected") {
        this.state = "connected";
        this.log?.info({ sessionId: this.sessionId }, "zookeeper reconnected (same session)");
        this.emit("reconnected");
      }
    });
    client.on("connecting", () => {
      if (this.state === "connected") {
        this.state = "disconnected";
        this.log?.warn({ sessionId: this.sessionId }, "zookeeper connection lost; session may still be alive");
        this.emit("disconnected");
      }
    });
    client.on("close", (_self: unknown, code: number) => {
      if (this.state === "closed" || this.state === "expired") return;
      if (code === ZooKeeper.ZOO_EXPIRED_SESSION_STATE) {
        this.state = "expired";
        this.log?.error({ sessionId: this.sessionId }, "zookeeper session expired");
        this.emit("expired");
      } else {
        this.state = "closed";
        this.emit("closed");
      }
    });
  }

  static connect(opts: ZkOptions): Promise<ZkSession> {
    const client = new ZooKeeper({
      connect: opts.connect,
      timeout: opts.sessionTimeoutMs,
      debug_level: ZooKeeper.ZOO_LOG_LEVEL_ERROR,
      host_order_deterministic: false,
      ...(opts.resume ? { client_id: opts.resume.clientId, client_password: opts.resume.password } : {}),
    });
    client.data_as_buffer = true;
    const limit = opts.connectTimeoutMs ?? Math.max(10_000, 3 * opts.sessionTimeoutMs);
    return new Promise<ZkSession>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        try {
          client.close();
        } catch {
          /* already closed */
        }
        reject(new UnavailableError(`could not connect to ZooKeeper at ${opts.connect} within ${limit} ms`));
      }, limit);
      const onConnect = () => {
        cleanup();
        resolve(new ZkSession(client, opts.logger));
      };
      const onClose = () => {
        cleanup();
        reject(new UnavailableError(`ZooKeeper connection to ${opts.connect} closed while connecting`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        client.removeListener("connect", onConnect);
        client.removeListener("close", onClose);
      };
      client.on("connect", onConnect);
      client.on("close", onClose);
      client.init({});
    });
  }

  get sessionId(): string {
    return String(this.client.native?.client_id ?? "");
  }

  get credentials(): SessionCredentials {
    return { clientId: String(this.client.native?.client_id ?? ""), password: String(this.client.native?.client_password ?? "") };
  }

  /** The negotiated session timeout in ms. */
  get sessionTimeoutMs(): number {
    return Number(this.client.native?.timeout ?? 0);
  }

  get isConnected(): boolean {
    return this.state === "connected";
  }

  /** False once the session expired or was closed: the session can never act again. */
  get isAlive(): boolean {
    return this.state === "connected" || this.state === "disconnected";
  }

  private check(op: string, path: string): void {
    if (!this.isAlive) throw new CoordinationError(op, path, ZK.SESSIONEXPIRED, `session ${this.state}`);
  }

  private fail(op: string, path: string, rc: number, error: string): CoordinationError {
    return new CoordinationError(op, path, rc, error);
  }

  async create(path: string, data: Buffer | string = "", mode: CreateMode = "persistent"): Promise<string> {
    this.check("create", path);
    return new Promise((resolve, reject) => {
      this.client.a_create(path, Buffer.from(data), MODE_FLAGS[mode], (rc, error, created) => {
        if (rc === ZK.OK) resolve(created);
        else reject(this.fail("create", path, rc, error));
      });
    });
  }

  /** Creates the node; resolves false when it already exists. */
  async createIfAbsent(path: string, data: Buffer | string = "", mode: CreateMode = "persistent"): Promise<boolean> {
    try {
      await this.create(path, data, mode);
      return true;
    } catch (e) {
      if (e instanceof CoordinationError && e.zkCode === ZK.NODEEXISTS) return false;
      throw e;
    }
  }

  /** Creates every missing ancestor and the node itself (persistent, empty). */
  async ensurePath(path: string): Promise<void> {
    const parts = path.split("/").filter(Boolean);
    let cur = "";
    for (const p of parts) {
      cur += "/" + p;
      await this.createIfAbsent(cur);
    }
  }

  async exists(path: string, watch?: (ev: WatchEvent) => void): Promise<ZkStat | undefined> {
    this.check("exists", path);
    return new Promise((resolve, reject) => {
      const cb: StatCb = (rc, error, stat) => {
        if (rc === ZK.OK) resolve(stat);
        else if (rc === ZK.NONODE) resolve(undefined);
        else reject(this.fail("exists", path, rc, error));
      };
      if (watch) this.client.aw_exists(path, dataWatch(watch), cb);
      else this.client.a_exists(path, false, cb);
    });
  }

  async get(path: string, watch?: (ev: WatchEvent) => void): Promise<{ data: Buffer; stat: ZkStat }> {
    const r = await this.getIfExists(path, watch);
    if (!r) throw this.fail("get", path, ZK.NONODE, "no node");
    return r;
  }

  /**
   * Reads a node if it exists. With a watch, the caller also hears of the
   * node's creation: ZooKeeper leaves no data watch on a missing node, so an
   * exists watch is armed instead (and the read retried if it appeared meanwhile).
   */
  async getIfExists(path: string, watch?: (ev: WatchEvent) => void): Promise<{ data: Buffer; stat: ZkStat } | undefined> {
    for (let tries = 0; tries < 3; tries++) {
      const r = await this.getOnce(path, watch);
      if (r || !watch) return r;
      if (!(await this.exists(path, watch))) return undefined;
    }
    return this.getOnce(path, watch);
  }

  private async getOnce(path: string, watch?: (ev: WatchEvent) => void): Promise<{ data: Buffer; stat: ZkStat } | undefined> {
    this.check("get", path);
    return new Promise((resolve, reject) => {
      const cb: DataCb = (rc, error, stat, data) => {
        if (rc === ZK.OK) resolve({ data: data ?? Buffer.alloc(0), stat });
        else if (rc === ZK.NONODE) resolve(undefined);
        else reject(this.fail("get", path, rc, error));
      };
      if (watch) this.client.aw_get(path, dataWatch(watch), cb);
      else this.client.a_get(path, false, cb);
    });
  }

  async children(path: string, watch?: (ev: WatchEvent) => void): Promise<string[]> {
    this.check("children", path);
    return new Promise((resolve, reject) => {
      const cb: ChildCb = (rc, error, children) => {
        if (rc === ZK.OK) resolve(children ?? []);
        else if (rc === ZK.NONODE) resolve([]);
        else reject(this.fail("children", path, rc, error));
      };
      if (watch) this.client.aw_get_children(path, dataWatch(watch), cb);
      else this.client.a_get_children(path, false, cb);
    });
  }

  /** Versioned set (compare-and-set); version -1 sets unconditionally. Rejects with BADVERSION on a stale version. */
  async set(path: string, data: Buffer | string, version = -1): Promise<ZkStat> {
    this.check("set", path);
    return new Promise((resolve, reject) => {
      this.client.a_set(path, Buffer.from(data), version, (rc, error, stat) => {
        if (rc === ZK.OK) resolve(stat);
        else reject(this.fail("set", path, rc, error));
      });
    });
  }

  async delete(path: string, version = -1): Promise<void> {
    this.check("delete", path);
    return new Promise((resolve, reject) => {
      this.client.a_delete_(path, version, (rc, error) => {
        if (rc === ZK.OK || rc === ZK.NONODE) resolve();
        else reject(this.fail("delete", path, rc, error));
      });
    });
  }

  /** Deletes a node and everything below it (not atomic; used for clean-up only). */
  async deleteRecursive(path: string): Promise<void> {
    for (const c of await this.children(path)) await this.deleteRecursive(`${path}/${c}`);
    await this.delete(path);
  }

  /** Flushes the channel between this client's server and the leader (read-your-peers'-writes). */
  async sync(path: string): Promise<void> {
    this.check("sync", path);
    return new Promise((resolve, reject) => {
      this.client.a_sync(path, (rc, error) => {
        if (rc === ZK.OK) resolve();
        else reject(this.fail("sync", path, rc, error));
      });
    });
  }

  close(): void {
    if (this.state === "closed" || this.state === "expired") return;
    this.state = "closed";
    try {
      this.client.close();
    } catch {
      /* already closed */
    }
    this.emit("closed");
  }
}

export function isZkCode(e: unknown, code: number): boolean {
  return e instanceof CoordinationError && e.zkCode === code;
}
