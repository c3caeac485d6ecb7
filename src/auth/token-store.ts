import { z } from "zod";
import { ConflictError, NotFoundError, ValidationError } from "../common/errors.js";
import { readJson } from "../common/json.js";
import type { Logger } from "../common/logger.js";
import { isZkCode, ZK, type ZkSession } from "../coord/zk.js";
import type { Caller } from "./grants.js";
import { digestOf, newSecret, sameDigest } from "./secret.js";
import { rereadUntilArmed } from "../coord/read-retry.js";

/**
 * Namespaced API tokens, shared by every manager through ZooKeeper: one znode
 * per token under `<root>/auth/tokens/<name>` holding its role, namespaces,
 * expiry and the SHA-256 digest of its secret (never the secret). Every
 * manager keeps the set in memory behind a children watch, so a new token is
 * accepted and a revoked one refused as soon as the watch fires (milliseconds);
 * a bearer token missing from memory makes one coalesced re-read before it is
 * refused, so a token created through another manager works at once.
 */

export const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
export const NAMESPACE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export const StoredTokenSchema = z
  .object({
    name: z.string().regex(TOKEN_NAME),
    role: z.enum(["read", "submit"]),
    namespaces: z.array(z.string().regex(NAMESPACE_NAME)).min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    createdAt: z.number(),
    createdBy: z.string(),
    expiresAt: z.number().optional(),
  })
  .strict();
export type StoredToken = z.infer<typeof StoredTokenSchema>;

/** What `token list` shows: everything but the digest. */
export type TokenInfo = Omit<StoredToken, "sha256">;

export interface NewToken {
  name: string;
  role: "read" | "submit";
  namespaces: string[];
  ttlMs?: number;
  createdBy: string;
}

/** A fresh re-read is made at most this often for unknown bearer tokens (each costs one ZooKeeper listing). */
const MISS_REFRESH_MIN_MS = 100;
/** Expired tokens are looked for at most this often (the check reads only memory; removal costs a delete each). */
const TRIM_EVERY_MS = 60_000;

/** Tokens whose expiry lies more than `keepExpiredMs` before `now`: they leave ZooKeeper (pure). */
export function expiredTokens(tokens: Iterable<StoredToken>, now: number, keepExpiredMs: number): string[] {
  const out: string[] = [];
  for (const t of tokens) if (t.expiresAt !== undefined && now - t.expiresAt >= keepExpiredMs) out.push(t.name);
  return out.sort();
}

export class TokenStore {
  private readonly dir: string;
  private tokens = new Map<string, StoredToken>();
  private refreshing?: Promise<void>;
  private lastRefresh = 0;
  private lastTrim = 0;
  private closed = false;

  constructor(
    private readonly zk: ZkSession,
    root: string,
    private readonly log: Logger,
  ) {
    this.dir = `${root}/auth/tokens`;
  }

  async start(): Promise<void> {
    await this.zk.ensurePath(this.dir);
    await this.reload(true);
  }

  close(): void {
    this.closed = true;
  }

  /** The caller whose secret has this digest, from memory (undefined: unknown). Expired tokens are returned; the caller checks. */
  lookup(digest: string): Caller | undefined {
    let hit: StoredToken | undefined;
    for (const t of this.tokens.values()) if (sameDigest(t.sha256, digest)) hit = t;
    return hit ? { name: hit.name, role: hit.role, namespaces: hit.namespaces, ...(hit.expiresAt !== undefined ? { expiresAt: hit.expiresAt } : {}) } : undefined;
  }

  /** Re-reads the set from ZooKeeper (coalesced, at most every MISS_REFRESH_MIN_MS). */
  async refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (Date.now() - this.lastRefresh < MISS_REFRESH_MIN_MS || !this.zk.isConnected) return;
    this.refreshing = this.zk
      .sync(this.dir)
      .then(() => this.reload(false))
      .catch((e: unknown) => this.log.warn({ err: e }, "re-reading tokens failed"))
      .finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  list(): TokenInfo[] {
    return [...this.tokens.values()].map(({ sha256: _digest, ...info }) => info).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Creates a token; returns its secret (shown once, never stored). */
  async create(t: NewToken, reservedNames: ReadonlySet<string>): Promise<{ token: string; info: TokenInfo }> {
    if (!TOKEN_NAME.test(t.name)) throw new ValidationError([{ field: "name", message: "must be 1-64 of A-Z a-z 0-9 . _ -" }]);
    for (const ns of t.namespaces) if (!NAMESPACE_NAME.test(ns)) throw new ValidationError([{ field: "namespaces", message: `"${ns}" is not a namespace name (1-64 of A-Z a-z 0-9 . _ -)` }]);
    if (reservedNames.has(t.name)) throw new ConflictError(`token name "${t.name}" is taken by a token of the config`, { field: "name" });
    const token = newSecret();
    const now = Date.now();
    const stored: StoredToken = {
      name: t.name,
      role: t.role,
      namespaces: [...new Set(t.namespaces)].sort(),
      sha256: digestOf(token),
      createdAt: now,
      createdBy: t.createdBy,
      ...(t.ttlMs !== undefined ? { expiresAt: now + t.ttlMs } : {}),
    };
    try {
      await this.zk.create(`${this.dir}/${t.name}`, JSON.stringify(stored));
    } catch (e) {
      if (isZkCode(e, ZK.NODEEXISTS)) throw new ConflictError(`token "${t.name}" exists (revoke it first)`, { field: "name" });
      throw e;
    }
    this.tokens.set(t.name, stored);
    const { sha256: _digest, ...info } = stored;
    return { token, info };
  }

  async revoke(name: string): Promise<void> {
    try {
      await this.zk.delete(`${this.dir}/${name}`);
    } catch (e) {
      if (isZkCode(e, ZK.NONODE)) throw new NotFoundError("token", name);
      throw e;
    }
    this.tokens.delete(name);
  }

  /**
   * Removes the tokens expired for longer than `keepExpiredMs` (run by the
   * primary's tick). An expired token is kept a while so that its holder is
   * told "expired" rather than "unknown" and `token list` shows it; after
   * that it is only clutter in ZooKeeper. A revoked token is deleted at once.
   */
  async trim(now: number, keepExpiredMs: number): Promise<void> {
    if (now - this.lastTrim < Math.min(TRIM_EVERY_MS, keepExpiredMs)) return;
    this.lastTrim = now;
    const names = expiredTokens(this.tokens.values(), now, keepExpiredMs);
    for (const name of names) {
      try {
        await this.zk.delete(`${this.dir}/${name}`);
      } catch (e) {
        if (!isZkCode(e, ZK.NONODE)) throw e;
      }
      this.tokens.delete(name);
    }
    if (names.length) this.log.info({ removed: names }, "expired tokens removed");
  }

  /** `watch`: re-arm the one-shot children watch (at start and each time it fires). */
  private async reload(watch: boolean): Promise<void> {
    if (this.closed || !this.zk.isAlive) return;
    const names = await this.zk.children(this.dir, watch ? () => void this.onChange() : undefined);
    // Every token is read again: a name revoked and created anew between two reads holds a new digest.
    const next = new Map<string, StoredToken>();
    await Promise.all(
      names.map(async (n) => {
        const r = await this.zk.getIfExists(`${this.dir}/${n}`);
        if (r) next.set(n, readJson(StoredTokenSchema, r.data, `${this.dir}/${n}`));
      }),
    );
    this.tokens = next;
    this.lastRefresh = Date.now();
  }

  private onChange(): Promise<void> {
    return rereadUntilArmed(
      () => this.reload(true),
      () => !this.closed,
      (e) => this.log.warn({ err: e }, "re-reading tokens failed; retrying in 1 s"),
    );
  }
}
