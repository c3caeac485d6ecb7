import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { CoordinationError, UnavailableError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { serversOf, sessionVerdict } from "../zk-probe.js";
import { openHandle, orderedServers } from "./handle.js";
import { NATIVE_CONNECTED, ZK, ZooKeeper, type NativeClient, type SessionCredentials } from "./native.js";
import { invalidPathReason } from "./paths.js";
import { WatchTable } from "./watches.js";

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
 * `close` with -112 is the C client's own report that a server answered
 * "no such session" (handle.ts turns off the binding's empty-read counter,
 * which used to close live sessions the same way while the client was
 * reconnecting after a server died), so it ends the session at once.
 *
 * While disconnected, the servers are asked about the session directly
 * (zk-probe.ts, `holdWhileDisconnected`): the C client, reconnecting through
 * servers that are still electing or syncing a leader, can take longer than
 * a short session timeout, and the servers would expire a session whose
 * process is alive and reachable. A server's "alive" answer renews the
 * session as any reconnection does; its "no such session" ends ours at once.
 * A handle that has not reconnected within three session timeouts (at least
 * 10 s) while the servers serve and keep the session is given up (closed and
 * reported expired), so no caller waits on it for ever.
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
  logger?: Logger;
}

export interface ZkSessionEvents {
  disconnected: [];
  reconnected: [];
  expired: [];
  closed: [];
}

const DEFAULTS = Object.freeze({
  /** Connecting is given up after this many session timeouts… */
  connectTimeoutSessions: 3,
  /** …but not before this long. */
  minConnectTimeoutMs: 10_000,
  /** While disconnected, the servers are asked about the session this many times per session timeout. */
  probesPerSession: 4,
  /** A handle still disconnected after this many session timeouts (at least minStuckMs) of servers keeping the session is given up. */
  stuckAfterSessions: 3,
  minStuckMs: 10_000,
});

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
  // A handle given up right after a failed attempt is not an answer: try again while time is left.
  while (Date.now() < deadline) {
    const client = await openHandle(await orderedServers(opts.connect, first), opts.sessionTimeoutMs, opts.resume, Math.max(1, deadline - Date.now()));
    if (client) return client;
    if (opts.resume && (await sessionVerdict(serversOf(opts.connect), opts.resume, opts.sessionTimeoutMs)).verdict === "expired") throw expiredError(opts.resume);
    await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
  }
  throw new UnavailableError(`could not connect to ZooKeeper at ${opts.connect} within ${limit} ms`);
}

export abstract class SessionState extends EventEmitter<ZkSessionEvents> {
  private state: "connected" | "disconnected" | "expired" | "closed" = "connected";
  protected readonly watches = new WatchTable();
  private readonly creds: SessionCredentials;
  protected readonly timeoutMs: number;
  private holding = false;

  protected constructor(
    protected readonly client: NativeClient,
    private readonly opts: ZkOptions,
  ) {
    super();
    this.creds = { clientId: String(client.native?.client_id ?? ""), password: String(client.native?.client_password ?? "") };
    this.timeoutMs = Number(client.native?.timeout ?? opts.sessionTimeoutMs);
    this.listen();
  }

  private get log(): Logger | undefined {
    return this.opts.logger;
  }

  private listen(): void {
    const client = this.client;
    client.on("connect", () => {
      if (this.state !== "disconnected") return;
      this.state = "connected";
      this.log?.info({ sessionId: this.sessionId }, "zookeeper reconnected (same session)");
      this.emit("reconnected");
    });
    client.on("connecting", () => {
      if (this.state !== "connected") return;
      this.state = "disconnected";
      this.log?.warn({ sessionId: this.sessionId }, "zookeeper connection lost; session may still be alive");
      this.emit("disconnected");
      void this.holdWhileDisconnected();
    });
    // Node events of the default watcher (see WatchTable): the native object, then the path.
    for (const ev of ["created", "deleted", "changed", "child"] as const) {
      client.on(ev, (_native: unknown, path: string) => this.watches.deliver(ev, path));
    }
    client.on("close", (_self: unknown, code: number) => {
      if (!this.isAlive) return;
      if (code === ZooKeeper.ZOO_EXPIRED_SESSION_STATE) return this.expire();
      this.state = "closed";
      this.emit("closed");
    });
  }

  /** Keeps the session renewed on the servers until the handle reconnects; ends it when a server says it is gone. */
  private async holdWhileDisconnected(): Promise<void> {
    if (this.holding) return;
    this.holding = true;
    const stuckAfterMs = Math.max(DEFAULTS.minStuckMs, DEFAULTS.stuckAfterSessions * this.timeoutMs);
    let servedSince: number | undefined;
    try {
      while (this.state === "disconnected") {
        await sleep(this.timeoutMs / DEFAULTS.probesPerSession);
        if (this.state !== "disconnected") return;
        const { verdict } = await sessionVerdict(serversOf(this.opts.connect), this.creds, this.timeoutMs);
        // The handle may have reconnected meanwhile; its own view wins then.
        if (this.state !== "disconnected") return;
        if (verdict === "expired") return this.giveUp("a server says the session is gone");
        // Only time with a server serving counts against the handle: without a quorum it cannot reconnect.
        servedSince = verdict === "alive" ? (servedSince ?? Date.now()) : undefined;
        if (servedSince !== undefined && Date.now() - servedSince > stuckAfterMs) return this.giveUp("the client did not reconnect to a session the servers keep");
      }
    } finally {
      this.holding = false;
    }
  }

  /** Ends a session whose handle is not connected: closing it then sends nothing to the servers. */
  private giveUp(why: string): void {
    this.log?.warn({ sessionId: this.sessionId }, `zookeeper session given up: ${why}`);
    this.expire();
    if (this.client.state !== NATIVE_CONNECTED) {
      try {
        this.client.close();
      } catch {
        /* already closed */
      }
    }
  }

  private expire(): void {
    if (!this.isAlive) return;
    this.state = "expired";
    this.watches.clear();
    this.log?.error({ sessionId: this.sessionId }, "zookeeper session expired");
    this.emit("expired");
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
    // The C client refuses a bad path without ever calling back: the promise would hang.
    const bad = invalidPathReason(path);
    if (bad) throw new CoordinationError(op, path, ZK.BADARGUMENTS, `invalid path: ${bad}`);
  }

  protected fail(op: string, path: string, rc: number, error: string): CoordinationError {
    return new CoordinationError(op, path, rc, error);
  }

  /** Runs one native call; a call the C client refused outright (its callback never runs) rejects here. */
  protected call<T>(op: string, path: string, start: (resolve: (v: T) => void, reject: (e: unknown) => void) => number): Promise<T> {
    this.check(op, path);
    return new Promise<T>((resolve, reject) => {
      const rc = start(resolve, reject);
      if (typeof rc === "number" && rc !== ZK.OK) reject(this.fail(op, path, rc, "refused by the client"));
    });
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
