import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { CoordinationError, UnavailableError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { serversOf, sessionVerdict } from "../zk-probe.js";
import { aclFor, type AclEntry, type ZkAuth } from "./acl.js";
import { firstThen, openHandle, orderedServers } from "./handle.js";
import { NATIVE_CONNECTED, ZK, ZooKeeper, type NativeClient, type SessionCredentials, type WatchEvent, type Watcher } from "./native.js";
import { invalidPathReason } from "./paths.js";
import { SessionTrust } from "./trust.js";
import { WatchTable, type ArmedWatch, type WatchKind } from "./watches.js";

/**
 * The session state machine under the znode API (znodes.ts).
 *
 * Session semantics matter for fencing: the binding fires `connect` again after
 * every reconnect of the *same* session, and `close` with state -112 when the
 * session expired. We surface these as three distinct events:
 *   - `disconnected`: connection lost, session may still be alive (ops queue)
 *   - `reconnected`:  same session is back (ephemerals and watches intact)
 *   - `expired`:      the session is gone for good; this object is dead
 * Once expired (or closed), every operation rejects; nothing is retried on a
 * new session behind the caller's back, because a new session would silently
 * drop the fence that the old one held (session-keeper.ts opens the next one,
 * and its owner re-registers on it).
 *
 * The binding's own failures are worked around here, by asking the servers
 * themselves (zk-probe.ts) and resuming the session on a fresh handle:
 *   - Its poll loop used to close a live handle as if the session expired
 *     after ten empty reads in a row, which a reconnection after a server
 *     died looks like; handle.ts turns that counter off, so a `close` -112
 *     is the C client's report of a server's "no such session". It is still
 *     checked with a server before the session is ended (`reattach`).
 *   - A handle never reconnects by itself. When its C client opened a new
 *     socket, the unpatched binding's poll loop kept its watch from the old
 *     one and could miss the new socket's events (seen after server deaths,
 *     isolations and freezes: a handle timed out on every server, one
 *     connection attempt after another, for minutes, while the servers
 *     accepted its connections and served everyone else; fresh handles of
 *     the same process then often failed too, their descriptor numbers
 *     being reused). scripts/patch-zookeeper-binding.js now gives each new
 *     socket a poll handle of its own; replacing the handle stays, being
 *     the way the fault and partition suites exercise. So the moment a
 *     handle loses its connection it is closed (a disconnected handle sends
 *     nothing, so the session is untouched) and the session is resumed on a
 *     fresh handle once a server answers for it (`reattach`). While none
 *     does, the servers are asked every few hundred milliseconds: an
 *     "alive" answer renews the session as any reconnection does, and a
 *     "no such session" ends it at once.
 * A session no handle could resume within three session timeouts of servers
 * keeping it is given up.
 *
 * While disconnected, `suspended` tells when the session can no longer be
 * trusted to be alive (zk/trust.ts: half the session timeout without a
 * server vouching for it); a holder that must never act on a dead session
 * (the primary) gives it up then, without waiting to hear of its expiry.
 */

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
  /** Torca's credential: every handle authenticates with it, and znodes created get their ACLs from it (acl.ts). Without it, znodes stay open. */
  auth?: ZkAuth;
  logger?: Logger;
  /** Told of every operation's duration and outcome (the daemon's metrics). */
  observe?: ZkOperationObserver;
}

/** `operation`: create, get, set, delete, exists, children, setAcl, sync; `ok`: whether ZooKeeper answered success. */
export type ZkOperationObserver = (operation: string, ms: number, ok: boolean) => void;

export interface ZkSessionEvents {
  disconnected: [];
  /** Disconnected long enough, with no server vouching for the session, that it may have expired (once per disconnection). */
  suspended: [];
  reconnected: [];
  expired: [];
  closed: [];
}

const DEFAULTS = Object.freeze({
  /** Connecting is given up after this many session timeouts… */
  connectTimeoutSessions: 3,
  /** …but not before this long. */
  minConnectTimeoutMs: 10_000,
  /** A new handle that has not connected within this many session timeouts (at least minAttemptMs) is replaced by a fresh one. */
  attemptSessions: 2,
  minAttemptMs: 4000,
  /** While no handle holds the session, a server is given this share of the session timeout to answer a probe. */
  probesPerSession: 4,
  /** Pause between a probe's socket closing and a native handle opening its own (it may get the same descriptor). */
  descriptorSettleMs: 20,
});

/** How long a call waits for a handle being attached before it fails with connection loss. */
const REATTACH_WAIT_MS = 3000;

/** The default connect limit: three session timeouts, at least 10 s. */
export function defaultConnectTimeoutMs(sessionTimeoutMs: number): number {
  return Math.max(DEFAULTS.minConnectTimeoutMs, DEFAULTS.connectTimeoutSessions * sessionTimeoutMs);
}

function expiredError(resume: SessionCredentials): UnavailableError {
  return new UnavailableError(`ZooKeeper session ${resume.clientId} has expired`);
}

/** A native handle on a new session, or on `opts.resume` (rejects when that session expired). */
export async function connectHandle(opts: ZkOptions): Promise<NativeClient> {
  const limit = opts.connectTimeoutMs ?? defaultConnectTimeoutMs(opts.sessionTimeoutMs);
  const deadline = Date.now() + limit;
  let first: string | undefined;
  if (opts.resume) {
    const v = await sessionVerdict(serversOf(opts.connect), opts.resume, opts.sessionTimeoutMs);
    if (v.verdict === "expired") throw expiredError(opts.resume);
    first = v.server;
  }
  // A handle given up right after a failed attempt is not an answer: try again while time is left. One
  // that does not connect within an attempt is replaced: the binding can miss its socket's events for good
  // (a descriptor number reused while it still watched it), which no waiting cures.
  const attemptMs = Math.max(DEFAULTS.minAttemptMs, DEFAULTS.attemptSessions * opts.sessionTimeoutMs);
  while (Date.now() < deadline) {
    const servers = await orderedServers(opts.connect, first);
    await sleep(DEFAULTS.descriptorSettleMs);
    const client = await openHandle(servers, opts.sessionTimeoutMs, opts.resume, Math.max(1, Math.min(attemptMs, deadline - Date.now())), opts.auth?.credential);
    if (client) return client;
    if (opts.resume && (await sessionVerdict(serversOf(opts.connect), opts.resume, opts.sessionTimeoutMs)).verdict === "expired") throw expiredError(opts.resume);
    await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
  }
  throw new UnavailableError(`could not connect to ZooKeeper at ${opts.connect} within ${limit} ms`);
}

/** Closes a handle that is not connected: that sends nothing that could end its session. */
function closeUnconnected(client: NativeClient): void {
  if (client.state === NATIVE_CONNECTED) return;
  try {
    client.close();
  } catch {
    /* already closed */
  }
}

export abstract class SessionState extends EventEmitter<ZkSessionEvents> {
  private state: "connected" | "disconnected" | "expired" | "closed" = "connected";
  protected client!: NativeClient;
  protected readonly watches = new WatchTable();
  private reattaching = false;
  private readonly trust: SessionTrust;
  private suspicion?: NodeJS.Timeout;
  private readonly creds: SessionCredentials;
  protected readonly timeoutMs: number;

  protected constructor(
    client: NativeClient,
    private readonly opts: ZkOptions,
  ) {
    super();
    this.creds = { clientId: String(client.native?.client_id ?? ""), password: String(client.native?.client_password ?? "") };
    this.timeoutMs = Number(client.native?.timeout ?? opts.sessionTimeoutMs);
    this.trust = new SessionTrust(this.timeoutMs);
    this.attach(client);
  }

  /** The read that arms a watch of this kind, and what it saw ("none": no node). */
  protected abstract readArming(kind: WatchKind, path: string, user: Watcher): Promise<{ seen: string; armed?: ArmedWatch }>;

  /** The ACL a znode created at `path` gets; undefined when the session has no credential (the znode stays open). */
  protected aclOf(path: string): AclEntry[] | undefined {
    return this.opts.auth ? aclFor(this.opts.auth, path) : undefined;
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
      this.trusted();
      this.log?.info({ sessionId: this.sessionId }, "zookeeper reconnected (same session)");
      this.emit("reconnected");
    });
    client.on("connecting", () => {
      if (this.client !== client || this.state !== "connected") return;
      this.state = "disconnected";
      this.log?.warn({ sessionId: this.sessionId }, "zookeeper connection lost; session may still be alive");
      this.distrust();
      this.emit("disconnected");
      // Replaced rather than left to reconnect (see the header); closed after reattach is under way, so its close is
      // expected, and outside this callback, which runs inside the C client's processing of the handle.
      void this.reattach("lost");
      setImmediate(() => closeUnconnected(client));
    });
    // Node events of the default watcher (see WatchTable): the native object, then the path.
    for (const ev of ["created", "deleted", "changed", "child"] as const) {
      client.on(ev, (_native: unknown, path: string) => {
        if (this.client === client) this.watches.deliver(ev, path);
      });
    }
    client.on("close", (_self: unknown, code: number) => {
      // A handle being replaced closes as it may: reattach decides.
      if (this.client !== client || this.state === "closed" || this.state === "expired" || this.reattaching) return;
      if (code === ZooKeeper.ZOO_EXPIRED_SESSION_STATE) {
        void this.reattach("given-up");
        return;
      }
      this.trusted();
      this.state = "closed";
      this.emit("closed");
    });
  }

  /**
   * The handle is gone (the binding closed it as if the session expired, or
   * it lost its connection and we closed it): ask the servers.
   * While one accepts the session, a fresh handle resumes it and the watches
   * are re-armed; a server's "no such session" ends it. Handles that fail to
   * connect although the session lives are retried for a few session timeouts.
   */
  private async reattach(why: "given-up" | "lost"): Promise<void> {
    if (this.reattaching) return;
    this.reattaching = true;
    if (this.state === "connected") {
      this.state = "disconnected";
      this.distrust();
      this.emit("disconnected");
    }
    if (why === "given-up") this.log?.warn({ sessionId: this.sessionId }, "zookeeper client gave its handle up; asking the servers whether the session lives");
    let aliveSince: number | undefined;
    try {
      while (this.isAlive) {
        // A server that does not answer (frozen, electing, cut off) must not hold up the answers of the others:
        // the session is trusted only for half its timeout without one (zk/trust.ts).
        const v = await sessionVerdict(serversOf(this.opts.connect), this.creds, this.timeoutMs, Math.min(1500, this.timeoutMs / DEFAULTS.probesPerSession));
        if (!this.isAlive) return;
        if (v.verdict === "expired") return this.expire();
        if (v.verdict !== "alive") {
          // No server answers (none reachable, or no quorum that could expire the session meanwhile).
          if (v.verdict === "no-quorum") this.vouch();
          aliveSince = undefined;
          await sleep(250);
          continue;
        }
        this.vouch();
        aliveSince ??= Date.now();
        // Let the probe's socket close completely before the C client opens its own (it may get the same descriptor).
        await sleep(20);
        const client = await openHandle(firstThen(this.opts.connect, v.server), this.timeoutMs, this.creds, Math.max(2000, this.timeoutMs), this.opts.auth?.credential);
        if (!this.isAlive) {
          client?.close();
          return;
        }
        if (client) {
          this.reattaching = false;
          this.attach(client);
          this.state = "connected";
          this.trusted();
          this.log?.info({ sessionId: this.sessionId }, "zookeeper session re-attached on a new handle");
          this.emit("reconnected");
          for (const w of this.watches.takeAll()) void this.rearm(w);
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

  /** Disconnected: the session is trusted for a while (zk/trust.ts), then `suspended` is told. */
  private distrust(): void {
    this.trust.disconnected(Date.now());
    this.armSuspicion();
  }

  /** A server vouched for the session while disconnected: trusted for longer. */
  private vouch(): void {
    if (!this.trust.isDisconnected) return;
    this.trust.vouched(Date.now());
    this.armSuspicion();
  }

  private trusted(): void {
    this.trust.connected();
    if (this.suspicion) clearTimeout(this.suspicion);
    this.suspicion = undefined;
  }

  private armSuspicion(): void {
    if (this.suspicion) clearTimeout(this.suspicion);
    const at = this.trust.suspectAt;
    if (at === undefined) return;
    this.suspicion = setTimeout(() => {
      this.suspicion = undefined;
      if (this.state !== "disconnected" || !this.trust.isSuspect(Date.now())) return;
      this.log?.warn({ sessionId: this.sessionId, timeoutMs: this.timeoutMs }, "zookeeper session may have expired: disconnected too long with no server vouching for it");
      this.emit("suspended");
    }, Math.max(0, at - Date.now()));
    this.suspicion.unref();
  }

  private expire(): void {
    if (!this.isAlive) return;
    this.trusted();
    this.state = "expired";
    this.watches.clear();
    this.log?.error({ sessionId: this.sessionId }, "zookeeper session expired");
    this.emit("expired");
  }

  /** Arms `w` again; if its node changed while no handle watched it, the caller hears of it now. */
  private async rearm(w: ArmedWatch): Promise<void> {
    let ev: WatchEvent;
    try {
      const { seen, armed } = await this.readArming(w.kind, w.path, w.user);
      if (seen === w.seen) return;
      if (armed) this.watches.disarm(armed);
      ev = w.kind === "child" ? "child" : seen === "none" ? "deleted" : w.seen === "none" ? "created" : "changed";
    } catch {
      // Not re-armed (the connection went again): the caller re-reads, which re-arms.
      ev = w.kind === "child" ? "child" : w.seen === "none" ? "created" : "changed";
    }
    w.user(ev, w.path);
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

  /**
   * The last time the session was known to be alive: `now` while connected;
   * while disconnected, the latest evidence (zk/trust.ts: the disconnection, a
   * server accepting it, or no quorum that could expire it); undefined once
   * it expired or was closed.
   */
  knownAliveAt(now: number): number | undefined {
    if (this.state === "connected") return now;
    return this.state === "disconnected" ? this.trust.evidenceSince : undefined;
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

  protected fail(op: string, path: string, rc: number, error: string): CoordinationError {
    return new CoordinationError(op, path, rc, error);
  }

  /**
   * Runs one native call; a call the C client refused outright (its callback never runs) rejects here.
   * While a new handle is being attached nothing can be sent, so a call waits for it a little (at most
   * REATTACH_WAIT_MS, and never past half the session timeout) instead of failing a write the next moment
   * would have taken; nothing was sent meanwhile, so the call is made once, after.
   */
  protected call<T>(op: string, path: string, start: (resolve: (v: T) => void, reject: (e: unknown) => void) => number): Promise<T> {
    if (this.reattaching && this.isAlive) return this.untilAttached().then(() => this.callNow(op, path, start));
    return this.callNow(op, path, start);
  }

  private async untilAttached(): Promise<void> {
    const deadline = Date.now() + Math.min(REATTACH_WAIT_MS, this.timeoutMs / 2);
    while (this.reattaching && this.isAlive && Date.now() < deadline) await sleep(50);
  }

  private callNow<T>(op: string, path: string, start: (resolve: (v: T) => void, reject: (e: unknown) => void) => number): Promise<T> {
    this.check(op, path);
    const running = new Promise<T>((resolve, reject) => {
      const rc = start(resolve, reject);
      if (typeof rc === "number" && rc !== ZK.OK) reject(this.fail(op, path, rc, "refused by the client"));
    });
    const observe = this.opts.observe;
    if (!observe) return running;
    const t0 = performance.now();
    running.then(
      () => observe(op, performance.now() - t0, true),
      () => observe(op, performance.now() - t0, false),
    );
    return running;
  }

  close(): void {
    if (this.state === "closed" || this.state === "expired") return;
    this.trusted();
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
