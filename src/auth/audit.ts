import type { Context, Next } from "koa";
import { z } from "zod";
import { readJson } from "../common/json.js";
import type { Logger } from "../common/logger.js";
import { isZkCode, ZK, type ZkSession } from "../coord/zk.js";
import type { Caller } from "./grants.js";

/**
 * The audit log: one entry per mutating API call (who, what, when, from where,
 * and the answer's status), kept in ZooKeeper as persistent sequential znodes
 * under `<root>/audit`. ZooKeeper rather than a file per manager because
 * writes land on whichever manager serves them (the primary, or any manager
 * for tokens) and must survive a failover and be read whole from any manager;
 * the log is bounded (the writer that creates every TRIM_EVERY-th entry
 * deletes all but the newest KEEP), so ZooKeeper holds at most about
 * KEEP + TRIM_EVERY entries of under 1 KiB each.
 */

export const AUDIT_KEEP = 1000;
const TRIM_EVERY = 50;
/** The most entries the log holds at any time. */
export const AUDIT_MAX_ENTRIES = AUDIT_KEEP + TRIM_EVERY;
const PREFIX = "e-";

export const AuditEntrySchema = z
  .object({
    at: z.number(),
    who: z.string(),
    role: z.string().optional(),
    method: z.string(),
    path: z.string(),
    status: z.number(),
    from: z.string(),
    manager: z.string(),
  })
  .strict();
export type AuditEntry = z.infer<typeof AuditEntrySchema>;

export class AuditLog {
  constructor(
    private readonly zk: () => ZkSession | undefined,
    private readonly root: string,
    private readonly log: Logger,
  ) {}

  private get dir(): string {
    return `${this.root}/audit`;
  }

  /** Appends an entry; when ZooKeeper is unreachable the entry goes to the manager's log instead, so it is never lost silently. */
  async append(e: AuditEntry): Promise<void> {
    const zk = this.zk();
    try {
      if (!zk?.isConnected) throw new Error("no ZooKeeper session");
      const created = await this.createEntry(zk, e);
      const seq = Number(created.slice(created.lastIndexOf(PREFIX) + PREFIX.length));
      if (seq % TRIM_EVERY === 0) await this.trim(zk);
    } catch (err) {
      this.log.warn({ audit: e, err: (err as Error).message }, "audit entry not stored in ZooKeeper");
    }
  }

  private async createEntry(zk: ZkSession, e: AuditEntry): Promise<string> {
    try {
      return await zk.create(`${this.dir}/${PREFIX}`, JSON.stringify(e), "sequential");
    } catch (err) {
      if (!isZkCode(err, ZK.NONODE)) throw err;
      await zk.ensurePath(this.dir);
      return zk.create(`${this.dir}/${PREFIX}`, JSON.stringify(e), "sequential");
    }
  }

  private async trim(zk: ZkSession): Promise<void> {
    const names = (await zk.children(this.dir)).sort();
    for (const n of names.slice(0, Math.max(0, names.length - AUDIT_KEEP))) {
      await zk.delete(`${this.dir}/${n}`).catch((err: unknown) => {
        if (!isZkCode(err, ZK.NONODE)) throw err;
      });
    }
  }

  /** The newest `limit` entries, newest first. */
  async read(limit: number): Promise<AuditEntry[] | undefined> {
    const zk = this.zk();
    if (!zk) return undefined;
    const names = (await zk.children(this.dir)).sort().slice(-limit).reverse();
    const got = await Promise.all(names.map((n) => zk.getIfExists(`${this.dir}/${n}`)));
    return got.flatMap((r, i) => (r ? [readJson(AuditEntrySchema, r.data, `${this.dir}/${names[i]}`)] : []));
  }
}

/** Agent reports are telemetry, not changes made by a user: they are not audited (one per agent per second would flush the log). */
const NOT_AUDITED = /^\/v1\/agents\/[^/]+\/report$/;

/**
 * Records every mutating request (any method but GET, HEAD and OPTIONS) after
 * it is answered, refused ones included: a 401 or 403 is what an audit is for.
 * The write does not delay the answer.
 */
export function auditMutations(audit: AuditLog, managerId: string) {
  return async (ctx: Context, next: Next) => {
    let status = 500;
    try {
      await next();
      status = ctx.status;
    } catch (e) {
      status = (e as { status?: number }).status ?? 500;
      throw e;
    } finally {
      if (!["GET", "HEAD", "OPTIONS"].includes(ctx.method) && !NOT_AUDITED.test(ctx.path)) {
        const caller = ctx.state.caller as Caller | undefined;
        void audit.append({
          at: Date.now(),
          who: caller?.name ?? "(unauthenticated)",
          ...(caller ? { role: caller.role } : {}),
          method: ctx.method,
          path: ctx.path,
          status,
          from: ctx.request.ip || ctx.req.socket.remoteAddress || "",
          manager: managerId,
        });
      }
    }
  };
}
