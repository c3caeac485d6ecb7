import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import { CoordinationError, UnavailableError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { accepts, serversOf, sessionVerdict } from "./zk-probe.js";

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
 *
 * The binding's `close` -112 is not proof of expiry, though: it also gives a
 * handle up after a burst of empty reads, which a failed connection attempt
 * causes (seen within milliseconds of killing one ensemble member, the
 * servers expiring nothing). So a closed handle is followed by asking the
 * servers themselves (zk-probe.ts): a session a server still accepts is
 * re-attached on a fresh handle, its watches re-armed (`reattach`); only a
 * server's "no such session" makes it expired. Fresh handles can fail the
 * same way for a while (the binding polls descriptors the C client closes
 * and reuses behind libuv's back); a session no handle could resume within
 * three session timeouts is given up, and the fault suite still sees that
 * now and then when a server dies.
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

/**
 * A watch callback, told the event and the path it fired for: a caller that
 * watches many nodes (the state copy's 100,000 tasks) passes one function for
 * all of them instead of a closure per node.
 */
export type Watcher = (ev: WatchEvent, path: string) => void;

type PathCb = (rc: number, error: string, path: string) => void;
type StatCb = (rc: number, error: string, stat: ZkStat) => void;
type DataCb = (rc: number, error: string, stat: ZkStat, data: Buffer | null) => void;
type ChildCb = (rc: number, error: string, children: string[]) => void;
type Child2Cb = (rc: number, error: string, children: string[] | null, stat: ZkStat | null) => void;
type VoidCb = (rc: number, error: string) => void;

/**
 * The addon's own object; calls return the C client's code: anything but 0
 * means the callback will never run. Operations go to it directly: the JS
 * wrapper class around it formats every call's arguments with util.inspect
 * (for a logger we never set) before calling through, which cost measurable
 * CPU and garbage at thousands of operations per second.
 */
interface NativeOps {
  a_create(path: string, data: Buffer, flags: number, cb: PathCb): number;
  a_exists(path: string, watch: boolean, cb: StatCb): number;
  a_get(path: string, watch: boolean, cb: DataCb): number;
  a_get_children(path: string, watch: boolean, cb: ChildCb): number;
  a_get_children2(path: string, watch: boolean, cb: Child2Cb): number;
  a_set(path: string, data: Buffer, version: number, cb: StatCb): number;
  a_delete_(path: string, version: number, cb: VoidCb): number;
  a_sync(path: string, cb: VoidCb): number;
  timeout?: number;
  client_id?: string;
  client_password?: string;
}

interface NativeClient extends EventEmitter {
  init(config: Record<string, unknown>): NativeClient;
  close(): void;
  data_as_buffer: boolean;
  /** The C client's state (3 connected); 0 once the handle is closed. */
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
const ZooKeeper = require("zookeeper/lib/zookeeper.js") as NativeCtor;

/** Return codes of the C client we branch on. */
export const ZK = {
  OK: 0,
  CONNECTIONLOSS: -4,
  OPERATIONTIMEOUT: -7,
  BADARGUMENTS: -8,
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

const NATIVE_CONNECTED = 3;

/** Which watches ZooKeeper fires for each node event (as the C client sorts them). */
const KINDS_FIRED: Partial<Record<WatchEvent, readonly ArmedWatch["kind"][]>> = {
  created: ["exists"],
  changed: ["data", "exists"],
  deleted: ["data", "exists", "child"],
  child: ["child"],
};

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

/**
 * A watch this session armed and not yet delivered, with what the read that
 * armed it saw (`seen`): after a re-attach it is armed again on the new
 * handle, and fired at once if the node changed meanwhile.
 */
interface ArmedWatch {
  kind: "data" | "exists" | "child";
  path: string;
  user: Watcher;
  seen: string;
  live: boolean;
}

/** Servers that accept connections first (in random order), refusing ones last: the C client tries them in this order. */
async function orderedServers(connect: string, first?: string): Promise<string> {
  const servers = serversOf(connect);
  const chroot = connect.includes("/") ? connect.slice(connect.indexOf("/")) : "";
  const up = await Promise.all(servers.map((s) => accepts(s)));
  const rank = (s: string, i: number) => (s === first ? 0 : up[i] ? 1 : 2);
  const order = servers.map((s, i) => ({ s, r: rank(s, i), k: Math.random() })).sort((a, b) => a.r - b.r || a.k - b.k);
  return order.map((x) => x.s).join(",") + chroot;
}

/** The connect string with `first` moved to the front (the server that just accepted our session). */
function firstThen(connect: string, first: string | undefined): string {
  const servers = serversOf(connect);
  const chroot = connect.includes("/") ? connect.slice(connect.indexOf("/")) : "";
  return [...servers.filter((s) => s === first), ...servers.filter((s) => s !== first)].join(",") + chroot;
}

/** A native handle connected to a (new or resumed) session; undefined when it closed first (or `limitMs` passed). */
function openHandle(connect: string, sessionTimeoutMs: number, resume: SessionCredentials | undefined, limitMs: number): Promise<NativeClient | undefined> {
  const client = new ZooKeeper({
    connect,
    timeout: sessionTimeoutMs,
    debug_level: ZooKeeper.ZOO_LOG_LEVEL_ERROR,
    // Our order (orderedServers): servers known to refuse are tried last.
    host_order_deterministic: true,
    ...(resume ? { client_id: resume.clientId, client_password: resume.password } : {}),
  });
  client.data_as_buffer = true;
  return new Promise((resolve) => {
    const done = (c: NativeClient | undefined) => {
      clearTimeout(timer);
      client.removeListener("connect", onConnect);
      client.removeListener("close", onClose);
      resolve(c);
    };
    const onConnect = () => done(client);
    const onClose = () => done(undefined);
    const timer = setTimeout(() => {
      // Still connecting, so closing sends nothing that could end the session.
      if (client.state !== NATIVE_CONNECTED) {
        try {
          client.close();
        } catch {
          /* already closed */
        }
      }
      done(client.state === NATIVE_CONNECTED ? client : undefined);
    }, limitMs);
    client.on("connect", onConnect);
    client.on("close", onClose);
    client.init({});
  });
}

export class ZkSession extends EventEmitter<ZkSessionEvents> {
  private state: "connected" | "disconnected" | "expired" | "closed" = "connected";
  private client!: NativeClient;
  /** Watches armed and not yet delivered, by path (ArmedWatch has the kind); arrays: nearly always one per path. */
  private readonly watches = new Map<string, ArmedWatch[]>();
  private reattaching = false;
  private readonly creds: SessionCredentials;
  private readonly timeoutMs: number;

  private constructor(client: NativeClient, private readonly opts: ZkOptions) {
    super();
    this.creds = { clientId: String(client.native?.client_id ?? ""), password: String(client.native?.client_password ?? "") };
    this.timeoutMs = Number(client.native?.timeout ?? opts.sessionTimeoutMs);
    this.attach(client);
  }

  private get log(): Logger | undefined {
    return this.opts.logger;
  }

  /** Listens to one native handle; events of a handle we replaced are ignored. */
  private attach(client: NativeClient): void {
    this.client = client;
    client.on("connect", () => {
      if (this.client !== client || this.state !== "disconnected") return;
      this.state = "connected";
      this.log?.info({ sessionId: this.sessionId }, "zookeeper reconnected (same session)");
      this.emit("reconnected");
    });
    client.on("connecting", () => {
      if (this.client !== client || this.state !== "connected") return;
      this.state = "disconnected";
      this.log?.warn({ sessionId: this.sessionId }, "zookeeper connection lost; session may still be alive");
      this.emit("disconnected");
    });
    // Node events of the default watcher (see `armed`): the native object, then the path.
    for (const ev of ["created", "deleted", "changed", "child"] as const) {
      client.on(ev, (_native: unknown, path: string) => {
        if (this.client === client) this.deliver(ev, path);
      });
    }
    client.on("close", (_self: unknown, code: number) => {
      if (this.client !== client || this.state === "closed" || this.state === "expired") return;
      if (code === ZooKeeper.ZOO_EXPIRED_SESSION_STATE) {
        void this.reattach();
        return;
      }
      this.state = "closed";
      this.emit("closed");
    });
  }

  static async connect(opts: ZkOptions): Promise<ZkSession> {
    const limit = opts.connectTimeoutMs ?? Math.max(10_000, 3 * opts.sessionTimeoutMs);
    const deadline = Date.now() + limit;
    let first: string | undefined;
    if (opts.resume) {
      const v = await sessionVerdict(serversOf(opts.connect), opts.resume, opts.sessionTimeoutMs);
      if (v.verdict === "expired") throw new UnavailableError(`ZooKeeper session ${opts.resume.clientId} has expired`);
      first = v.server;
    }
    // A handle given up right after a failed attempt is not an answer: try again while time is left.
    while (Date.now() < deadline) {
      const client = await openHandle(await orderedServers(opts.connect, first), opts.sessionTimeoutMs, opts.resume, Math.max(1, deadline - Date.now()));
      if (client) return new ZkSession(client, opts);
      if (opts.resume && (await sessionVerdict(serversOf(opts.connect), opts.resume, opts.sessionTimeoutMs)).verdict === "expired") {
        throw new UnavailableError(`ZooKeeper session ${opts.resume.clientId} has expired`);
      }
      await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
    }
    throw new UnavailableError(`could not connect to ZooKeeper at ${opts.connect} within ${limit} ms`);
  }

  /**
   * The binding closed our handle as if the session expired: ask the servers.
   * While one accepts the session, a fresh handle resumes it and the watches
   * are re-armed; a server's "no such session" ends it. Handles that fail to
   * connect although the session lives are retried for a few session timeouts.
   */
  private async reattach(): Promise<void> {
    if (this.reattaching) return;
    this.reattaching = true;
    if (this.state === "connected") {
      this.state = "disconnected";
      this.emit("disconnected");
    }
    this.log?.warn({ sessionId: this.sessionId }, "zookeeper client gave its handle up; asking the servers whether the session lives");
    let aliveSince: number | undefined;
    try {
      while (this.isAlive) {
        const v = await sessionVerdict(serversOf(this.opts.connect), this.creds, this.timeoutMs);
        if (!this.isAlive) return;
        if (v.verdict === "expired") return this.expire();
        if (v.verdict === "unknown") {
          // No server answers (no quorum): the session cannot expire meanwhile.
          aliveSince = undefined;
          await sleep(250);
          continue;
        }
        aliveSince ??= Date.now();
        // Let the probe's socket close completely before the C client opens its own (it may get the same descriptor).
        await sleep(20);
        const client = await openHandle(firstThen(this.opts.connect, v.server), this.timeoutMs, this.creds, Math.max(2000, this.timeoutMs));
        if (!this.isAlive) {
          client?.close();
          return;
        }
        if (client) {
          this.reattaching = false;
          this.attach(client);
          this.state = "connected";
          this.log?.info({ sessionId: this.sessionId }, "zookeeper session re-attached on a new handle");
          this.emit("reconnected");
          this.rearmWatches();
          return;
        }
        if (Date.now() - aliveSince > 3 * this.timeoutMs) {
          // Servers keep the session but no handle of ours can use it: stop holding it.
          this.log?.error({ sessionId: this.sessionId }, "no handle could resume the live session; giving it up");
          return this.expire();
        }
        await sleep(250);
      }
    } finally {
      this.reattaching = false;
    }
  }

  private expire(): void {
    if (!this.isAlive) return;
    this.state = "expired";
    this.watches.clear();
    this.log?.error({ sessionId: this.sessionId }, "zookeeper session expired");
    this.emit("expired");
  }

  /** Arms every pending watch again on the new handle. */
  private rearmWatches(): void {
    const pending = [...this.watches.values()].flat();
    this.watches.clear();
    for (const w of pending) {
      w.live = false;
      void this.rearm(w);
    }
  }

  /** Arms `w` again; if its node changed while no handle watched it, the caller hears of it now. */
  private async rearm(w: ArmedWatch): Promise<void> {
    let ev: WatchEvent;
    try {
      const { seen, armed } = await this.readArming(w.kind, w.path, w.user);
      if (seen === w.seen) return;
      if (armed) this.disarm(armed);
      ev = w.kind === "child" ? "child" : seen === "none" ? "deleted" : w.seen === "none" ? "created" : "changed";
    } catch {
      // Not re-armed (the connection went again): the caller re-reads, which re-arms.
      ev = w.kind === "child" ? "child" : w.seen === "none" ? "created" : "changed";
    }
    w.user(ev, w.path);
  }

  /** The read that arms a watch of this kind, and what it saw ("none": no node). */
  private async readArming(kind: ArmedWatch["kind"], path: string, user: Watcher): Promise<{ seen: string; armed?: ArmedWatch }> {
    if (kind === "data") {
      const r = await this.getArmed(path, user);
      return { seen: r.value ? String(r.value.stat.mzxid) : "none", ...(r.armed ? { armed: r.armed } : {}) };
    }
    if (kind === "exists") {
      const r = await this.existsArmed(path, user);
      return { seen: r.value ? String(r.value.mzxid) : "none", ...(r.armed ? { armed: r.armed } : {}) };
    }
    const r = await this.childrenArmed(path, user);
    return { seen: r.armed?.seen ?? "none", ...(r.armed ? { armed: r.armed } : {}) };
  }

  /**
   * Records a caller's watch until it fires; the read that arms it sets the
   * handle's default watcher (`watch: true`), whose node events `deliver`
   * hands to the callers watching that path.
   *
   * Not a callback per watch: the binding never frees a per-call watch
   * callback (its watcher epilog has no delete), so every watch armed that way
   * pinned its closure, and what the closure held, for the life of the
   * process (750,000 of them on a manager after one large submission). The
   * default watcher allocates nothing per watch, and the C client keeps one
   * registration per path and kind instead of one per read.
   */
  private armed(kind: ArmedWatch["kind"], path: string, user: Watcher): ArmedWatch {
    const w: ArmedWatch = { kind, path, user, seen: "none", live: true };
    const onPath = this.watches.get(path);
    if (onPath) onPath.push(w);
    else this.watches.set(path, [w]);
    return w;
  }

  private disarm(w: ArmedWatch): void {
    w.live = false;
    const onPath = this.watches.get(w.path);
    const i = onPath?.indexOf(w) ?? -1;
    if (!onPath || i < 0) return;
    if (onPath.length === 1) this.watches.delete(w.path);
    else onPath.splice(i, 1);
  }

  /** A node event of the current handle: to every watch on the path of a kind ZooKeeper fires for it. */
  private deliver(ev: WatchEvent, path: string): void {
    const kinds = KINDS_FIRED[ev];
    const onPath = this.watches.get(path);
    if (!kinds || !onPath) return;
    for (const w of [...onPath]) {
      if (!kinds.includes(w.kind)) continue;
      this.disarm(w);
      w.user(ev, path);
    }
  }

  get sessionId(): string {
    return this.creds.clientId;
  }

  get credentials(): SessionCredentials {
    return { ...this.creds };
  }

  /** The negotiated session timeout in ms. */
  get sessionTimeoutMs(): number {
    return this.timeoutMs;
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
    // Between a given-up handle and its replacement nothing can be sent.
    if (this.reattaching) throw new CoordinationError(op, path, ZK.CONNECTIONLOSS, "connection loss (re-attaching the session)");
    // The C client refuses a bad path without ever calling back: the promise would hang.
    const bad = invalidPathReason(path);
    if (bad) throw new CoordinationError(op, path, ZK.BADARGUMENTS, `invalid path: ${bad}`);
  }

  private fail(op: string, path: string, rc: number, error: string): CoordinationError {
    return new CoordinationError(op, path, rc, error);
  }

  /** Runs one native call; a call the C client refused outright (its callback never runs) rejects here. */
  private call<T>(op: string, path: string, start: (resolve: (v: T) => void, reject: (e: unknown) => void) => number): Promise<T> {
    this.check(op, path);
    return new Promise<T>((resolve, reject) => {
      const rc = start(resolve, reject);
      if (typeof rc === "number" && rc !== ZK.OK) reject(this.fail(op, path, rc, "refused by the client"));
    });
  }

  async create(path: string, data: Buffer | string = "", mode: CreateMode = "persistent"): Promise<string> {
    return this.call("create", path, (resolve, reject) =>
      this.client.native.a_create(path, Buffer.from(data), MODE_FLAGS[mode], (rc, error, created) => {
        if (rc === ZK.OK) resolve(created);
        else reject(this.fail("create", path, rc, error));
      }),
    );
  }

  /**
   * Creates a persistent node through connection losses. A create whose reply
   * was lost may have been applied, so on a retry the node already holding
   * exactly our data counts as ours; other data is NODEEXISTS.
   */
  async createRetrying(path: string, data: Buffer | string, withinMs = 2 * this.timeoutMs): Promise<void> {
    const deadline = Date.now() + withinMs;
    for (let retry = false; ; retry = true) {
      try {
        await this.create(path, data);
        return;
      } catch (e) {
        if (retry && isZkCode(e, ZK.NODEEXISTS) && (await this.getIfExists(path))?.data.equals(Buffer.from(data))) return;
        if (!isZkCode(e, ZK.CONNECTIONLOSS) || Date.now() > deadline || !this.isAlive) throw e;
      }
      await sleep(100);
    }
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

  async exists(path: string, watch?: Watcher): Promise<ZkStat | undefined> {
    return (await this.existsArmed(path, watch)).value;
  }

  private async existsArmed(path: string, watch?: Watcher): Promise<{ value?: ZkStat; armed?: ArmedWatch }> {
    const armed = watch ? this.armed("exists", path, watch) : undefined;
    try {
      const value = await this.call<ZkStat | undefined>("exists", path, (resolve, reject) => {
        const cb: StatCb = (rc, error, stat) => {
          if (rc === ZK.OK) resolve(stat);
          else if (rc === ZK.NONODE) resolve(undefined);
          else reject(this.fail("exists", path, rc, error));
        };
        return this.client.native.a_exists(path, armed !== undefined, cb);
      });
      // An exists watch stays armed on a missing node too.
      if (armed) armed.seen = value ? String(value.mzxid) : "none";
      return { ...(value ? { value } : {}), ...(armed ? { armed } : {}) };
    } catch (e) {
      if (armed) this.disarm(armed);
      throw e;
    }
  }

  async get(path: string, watch?: Watcher): Promise<{ data: Buffer; stat: ZkStat }> {
    const r = await this.getIfExists(path, watch);
    if (!r) throw this.fail("get", path, ZK.NONODE, "no node");
    return r;
  }

  /**
   * Reads a node if it exists. With a watch, the caller also hears of the
   * node's creation: ZooKeeper leaves no data watch on a missing node, so an
   * exists watch is armed instead (and the read retried if it appeared meanwhile).
   */
  async getIfExists(path: string, watch?: Watcher): Promise<{ data: Buffer; stat: ZkStat } | undefined> {
    for (let tries = 0; tries < 3; tries++) {
      const r = await this.getOnce(path, watch);
      if (r || !watch) return r;
      if (!(await this.exists(path, watch))) return undefined;
    }
    return this.getOnce(path, watch);
  }

  private async getOnce(path: string, watch?: Watcher): Promise<{ data: Buffer; stat: ZkStat } | undefined> {
    return (await this.getArmed(path, watch)).value;
  }

  private async getArmed(path: string, watch?: Watcher): Promise<{ value?: { data: Buffer; stat: ZkStat }; armed?: ArmedWatch }> {
    const armed = watch ? this.armed("data", path, watch) : undefined;
    try {
      const value = await this.call<{ data: Buffer; stat: ZkStat } | undefined>("get", path, (resolve, reject) => {
        const cb: DataCb = (rc, error, stat, data) => {
          if (rc === ZK.OK) resolve({ data: data ?? Buffer.alloc(0), stat });
          else if (rc === ZK.NONODE) resolve(undefined);
          else reject(this.fail("get", path, rc, error));
        };
        return this.client.native.a_get(path, armed !== undefined, cb);
      });
      if (!armed) return value ? { value } : {};
      // No data watch is left on a missing node.
      if (!value) {
        this.disarm(armed);
        return {};
      }
      armed.seen = String(value.stat.mzxid);
      return { value, armed };
    } catch (e) {
      if (armed) this.disarm(armed);
      throw e;
    }
  }

  async children(path: string, watch?: Watcher): Promise<string[]> {
    if (watch) return (await this.childrenArmed(path, watch)).value;
    return this.call("children", path, (resolve, reject) =>
      this.client.native.a_get_children(path, false, (rc, error, children) => {
        if (rc === ZK.OK) resolve(children ?? []);
        else if (rc === ZK.NONODE) resolve([]);
        else reject(this.fail("children", path, rc, error));
      }),
    );
  }

  /** Children with a child watch; the list's version (cversion) is what a re-arm compares. */
  private async childrenArmed(path: string, watch: Watcher): Promise<{ value: string[]; armed?: ArmedWatch }> {
    const armed = this.armed("child", path, watch);
    try {
      const r = await this.call<{ children: string[]; cversion: number } | undefined>("children", path, (resolve, reject) =>
        this.client.native.a_get_children2(path, true, (rc, error, children, stat) => {
          if (rc === ZK.OK) resolve({ children: children ?? [], cversion: stat?.cversion ?? -1 });
          else if (rc === ZK.NONODE) resolve(undefined);
          else reject(this.fail("children", path, rc, error));
        }),
      );
      if (!r) {
        this.disarm(armed);
        return { value: [] };
      }
      armed.seen = String(r.cversion);
      return { value: r.children, armed };
    } catch (e) {
      this.disarm(armed);
      throw e;
    }
  }

  /** Versioned set (compare-and-set); version -1 sets unconditionally. Rejects with BADVERSION on a stale version. */
  async set(path: string, data: Buffer | string, version = -1): Promise<ZkStat> {
    return this.call("set", path, (resolve, reject) =>
      this.client.native.a_set(path, Buffer.from(data), version, (rc, error, stat) => {
        if (rc === ZK.OK) resolve(stat);
        else reject(this.fail("set", path, rc, error));
      }),
    );
  }

  async delete(path: string, version = -1): Promise<void> {
    return this.call("delete", path, (resolve, reject) =>
      this.client.native.a_delete_(path, version, (rc, error) => {
        if (rc === ZK.OK || rc === ZK.NONODE) resolve();
        else reject(this.fail("delete", path, rc, error));
      }),
    );
  }

  /** Deletes a node and everything below it (not atomic; used for clean-up only). */
  async deleteRecursive(path: string): Promise<void> {
    for (const c of await this.children(path)) await this.deleteRecursive(`${path}/${c}`);
    await this.delete(path);
  }

  /** Flushes the channel between this client's server and the leader (read-your-peers'-writes). */
  async sync(path: string): Promise<void> {
    return this.call("sync", path, (resolve, reject) =>
      this.client.native.a_sync(path, (rc, error) => {
        if (rc === ZK.OK) resolve();
        else reject(this.fail("sync", path, rc, error));
      }),
    );
  }

  close(): void {
    if (this.state === "closed" || this.state === "expired") return;
    this.state = "closed";
    this.watches.clear();
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

/** ZooKeeper's own path rules (PathUtils.validatePath); undefined when the path is valid. */
export function invalidPathReason(path: string): string | undefined {
  if (!path.startsWith("/")) return "must start with /";
  if (path.length === 1) return undefined;
  if (path.endsWith("/")) return "must not end with /";
  for (const segment of path.slice(1).split("/")) {
    if (segment === "") return "empty segment";
    if (segment === "." || segment === "..") return `relative segment "${segment}"`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]/.test(path)) return "control or reserved character";
  return undefined;
}
