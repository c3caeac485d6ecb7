/**
 * How long a disconnected session can still be trusted to be alive: pure,
 * time passed in (zk/session.ts feeds it and acts on `suspectAt`).
 *
 * A server expires a session one session timeout after it last heard from
 * it, so a client cut off from every server cannot know its session lives
 * for long; the native client itself notices a silent server only after two
 * thirds of the timeout. A session holder that must never act on a dead
 * session (the primary) gives it up once it has been disconnected for
 * `fraction` of the timeout with no evidence that it lives, as ZooKeeper's
 * recipes do on a suspended connection.
 *
 * Evidence that the session lives counts from when it was seen:
 *   - the disconnection itself (the connection was up until then);
 *   - a server accepting the session (which also renews it);
 *   - a majority of the servers down or serving nobody (no quorum): nothing
 *     can expire a session then, and a quorum formed later gives every
 *     session a full timeout from its start.
 */

/** The share of the session timeout a session stays trusted without evidence. */
export const SUSPECT_AFTER_FRACTION = 0.5;

export class SessionTrust {
  private disconnectedAt?: number;
  private evidenceAt = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly fraction = SUSPECT_AFTER_FRACTION,
  ) {}

  /** The connection is up: the session is alive. */
  connected(): void {
    this.disconnectedAt = undefined;
  }

  /** The connection went (a later call while still disconnected keeps the first time). */
  disconnected(now: number): void {
    if (this.disconnectedAt !== undefined) return;
    this.disconnectedAt = now;
    this.evidenceAt = now;
  }

  /** A server accepted the session, or a majority showed no quorum that could expire it. */
  vouched(now: number): void {
    if (this.disconnectedAt !== undefined) this.evidenceAt = Math.max(this.evidenceAt, now);
  }

  /** While disconnected, the latest evidence that the session lives; undefined while connected (it lives now). */
  get evidenceSince(): number | undefined {
    return this.disconnectedAt === undefined ? undefined : this.evidenceAt;
  }

  get isDisconnected(): boolean {
    return this.disconnectedAt !== undefined;
  }

  /** When the session stops being trusted, unless evidence arrives first; undefined while connected. */
  get suspectAt(): number | undefined {
    return this.disconnectedAt === undefined ? undefined : this.evidenceAt + this.fraction * this.timeoutMs;
  }

  isSuspect(now: number): boolean {
    const at = this.suspectAt;
    return at !== undefined && now >= at;
  }
}
