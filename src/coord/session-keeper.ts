import type { Logger } from "../common/logger.js";
import { ZkSession, type SessionCredentials, type ZkOperationObserver } from "./zk.js";
import type { ZkAuth } from "./zk/acl.js";

/**
 * The one ZooKeeper session keeper: opens a session, hands it to its owner
 * (`onSession`: register, arm watches, load), and when that session ends for
 * good tells the owner (`onSessionLost`: fence, drop what the session held)
 * and opens the next one, which is handed over again. A session is never
 * reused after it ended and never replaced behind the owner's back: the owner
 * hears of every loss before it gets the next session.
 *
 * A keeper told to end sessions on "suspended" (the primary's) gives a
 * session up as soon as it has been disconnected too long to be trusted
 * alive (zk/trust.ts), rather than when it hears of the expiry on
 * reconnecting: the owner hears of the loss, the session is closed (a
 * disconnected handle sends nothing, so the servers expire it in their own
 * time), and the next session is opened once ZooKeeper can be reached.
 *
 * A failed connect or a failed `onSession` (the session is then closed) is
 * retried after `retryDelayMs`, doubled up to `retryMaxDelayMs`. stop() ends
 * the keeping, not the session: the owner decides whether to close it (an
 * agent restarting leaves it open for its next incarnation to resume).
 */

/** The ends of a session ZooKeeper (or the session's own trust) reports. */
export type ReportedSessionEnd = "expired" | "closed" | "suspended";
/** How a kept session ended; "abandoned": the owner gave it up (`abandon`). */
export type SessionEnd = ReportedSessionEnd | "abandoned";

export interface SessionOwner {
  /** A new session is up. Throwing closes it and a new one is tried later. */
  onSession(zk: ZkSession): Promise<void> | void;
  /** `zk` ended (one of `ends`) while kept; called before the next session is opened. */
  onSessionLost?(zk: ZkSession, why: SessionEnd): void;
}

export interface SessionKeeperOptions {
  /** ZooKeeper connect string. */
  connect: string;
  sessionTimeoutMs: number;
  /** Limit of one attempt to open a new session (default: ZkSession's). */
  connectTimeoutMs?: number;
  /** Credentials of an earlier session to resume before opening a new one; asked at every attempt. */
  resume?: () => SessionCredentials | undefined;
  /** Limit of one attempt to resume (default: session timeout + 2 s; the session is gone after that anyway). */
  resumeTimeoutMs?: number;
  /** Which ends of a session the owner hears of and a new session follows (default expired and closed). */
  ends?: readonly ReportedSessionEnd[];
  /** Pause before the next session after a loss (default 0). */
  renewDelayMs?: number;
  /** Pause after a failed attempt (default 1 s), doubled up to `retryMaxDelayMs` (default: no growth). */
  retryDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Torca's ZooKeeper credential, given to every session (see ZkOptions). */
  auth?: ZkAuth;
  /** What the owner does with a new session, for log lines (default "session set-up"). */
  purpose?: string;
  logger?: Logger;
  /** Given to every session (see ZkOptions). */
  observe?: ZkOperationObserver;
}

const DEFAULTS = Object.freeze({
  ends: Object.freeze(["expired", "closed"]) as readonly ReportedSessionEnd[],
  renewDelayMs: 0,
  retryDelayMs: 1000,
  purpose: "session set-up",
  resumeGraceMs: 2000,
});

type Settings = Required<Omit<SessionKeeperOptions, "connectTimeoutMs" | "resume" | "auth" | "logger" | "observe">> & Pick<SessionKeeperOptions, "connectTimeoutMs" | "resume" | "auth" | "logger" | "observe">;

export class SessionKeeper {
  private readonly o: Settings;
  private current?: ZkSession;
  private ready = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private delayMs: number;
  private first?: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly owner: SessionOwner,
    opts: SessionKeeperOptions,
  ) {
    const retryDelayMs = opts.retryDelayMs ?? DEFAULTS.retryDelayMs;
    this.o = {
      ...opts,
      ends: opts.ends ?? DEFAULTS.ends,
      renewDelayMs: opts.renewDelayMs ?? DEFAULTS.renewDelayMs,
      purpose: opts.purpose ?? DEFAULTS.purpose,
      resumeTimeoutMs: opts.resumeTimeoutMs ?? opts.sessionTimeoutMs + DEFAULTS.resumeGraceMs,
      retryDelayMs,
      retryMaxDelayMs: Math.max(retryDelayMs, opts.retryMaxDelayMs ?? retryDelayMs),
    };
    this.delayMs = retryDelayMs;
  }

  /** The session being kept (also while `onSession` runs); undefined between sessions. */
  get session(): ZkSession | undefined {
    return this.current;
  }

  /** Starts keeping; resolves once the first attempt is over, whether or not it gave a session. */
  start(): Promise<void> {
    this.first ??= this.attempt();
    return this.first;
  }

  /** Resolves once a session is up and handed over (at once if one is), or the keeper stopped. */
  live(): Promise<void> {
    if (this.stopped || (this.ready && this.current?.isAlive)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * The owner cannot go on with `zk` (e.g. a takeover could not read the
   * state): it is closed, told as lost ("abandoned"), and a new session
   * follows as after any loss.
   */
  abandon(zk: ZkSession): void {
    this.lost(zk, "abandoned");
  }

  /** Stops opening sessions and telling of losses; the current session is left to the owner. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private schedule(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.attempt();
    }, ms);
  }

  private retry(): void {
    this.schedule(this.delayMs);
    this.delayMs = Math.min(this.delayMs * 2, this.o.retryMaxDelayMs);
  }

  private async open(): Promise<ZkSession> {
    const base = { connect: this.o.connect, sessionTimeoutMs: this.o.sessionTimeoutMs, ...(this.o.auth ? { auth: this.o.auth } : {}), ...(this.o.logger ? { logger: this.o.logger } : {}), ...(this.o.observe ? { observe: this.o.observe } : {}) };
    const resume = this.o.resume?.();
    if (resume) {
      try {
        const zk = await ZkSession.connect({ ...base, resume, connectTimeoutMs: this.o.resumeTimeoutMs });
        this.o.logger?.info("resumed the previous ZooKeeper session");
        return zk;
      } catch {
        this.o.logger?.info("previous ZooKeeper session is gone; starting a new one");
      }
    }
    return ZkSession.connect({ ...base, ...(this.o.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.o.connectTimeoutMs } : {}) });
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    let zk: ZkSession;
    try {
      zk = await this.open();
    } catch (e) {
      this.o.logger?.warn({ err: e }, "cannot reach ZooKeeper; retrying");
      this.retry();
      return;
    }
    if (this.stopped) {
      zk.close();
      return;
    }
    this.current = zk;
    this.ready = false;
    for (const why of this.o.ends) zk.once(why, () => this.lost(zk, why));
    try {
      await this.owner.onSession(zk);
    } catch (e) {
      this.o.logger?.warn({ err: e }, `${this.o.purpose} failed; retrying`);
      if (this.current === zk) this.current = undefined;
      zk.close();
      this.retry();
      return;
    }
    if (this.current !== zk) return;
    this.ready = true;
    this.delayMs = this.o.retryDelayMs;
    this.wakeWaiters();
  }

  private lost(zk: ZkSession, why: SessionEnd): void {
    if (this.current !== zk || this.stopped) return;
    this.current = undefined;
    this.ready = false;
    this.owner.onSessionLost?.(zk, why);
    // A suspended session is abandoned too: never used again, whatever became of it.
    if (why === "suspended" || why === "abandoned") zk.close();
    this.schedule(this.o.renewDelayMs);
  }
}
