import { readJson, readJsonIfValid } from "../../common/json.js";
import type { Logger } from "../../common/logger.js";
import { zpaths, type ZPaths } from "../../coord/paths.js";
import type { ZkSession } from "../../coord/zk.js";
import { IdempotencyRecordSchema, isExpired, type IdempotencyRecord } from "./keys.js";

/** Expired keys are looked for at most this often (a listing of /idempotency each time). */
const TRIM_EVERY_MS = 60_000;

/**
 * Idempotency records in ZooKeeper, one znode per key and namespace
 * (/idempotency/<sha256>), written by the primary only. Each record's age is
 * read once per term and kept, so trimming lists the keys but reads only new ones.
 */
export class IdempotencyStore {
  private readonly p: ZPaths;
  private readonly createdAt = new Map<string, number>();
  private lastTrim = 0;

  constructor(
    private readonly zk: ZkSession,
    root: string,
    readonly ttlMs: number,
    private readonly log: Logger,
  ) {
    this.p = zpaths(root);
  }

  async get(id: string): Promise<IdempotencyRecord | undefined> {
    const path = this.p.idempotencyKey(id);
    const r = await this.zk.getIfExists(path);
    return r ? readJson(IdempotencyRecordSchema, r.data, path) : undefined;
  }

  async put(id: string, record: IdempotencyRecord): Promise<void> {
    const path = this.p.idempotencyKey(id);
    const data = JSON.stringify(record);
    await this.zk.putRetrying(this.p.idempotency, path, data);
    this.createdAt.set(id, record.createdAt);
  }

  async remove(id: string): Promise<void> {
    await this.zk.delete(this.p.idempotencyKey(id)).catch(() => undefined);
    this.createdAt.delete(id);
  }

  /** Deletes the records older than the TTL (run by the primary's tick; does nothing more than once a minute). */
  async trim(now: number): Promise<void> {
    if (now - this.lastTrim < TRIM_EVERY_MS) return;
    this.lastTrim = now;
    await this.zk.ensurePath(this.p.idempotency);
    const ids = await this.zk.children(this.p.idempotency);
    let removed = 0;
    for (const id of ids) {
      let at = this.createdAt.get(id);
      if (at === undefined) {
        const path = this.p.idempotencyKey(id);
        const r = await this.zk.getIfExists(path);
        const rec = r && readJsonIfValid(IdempotencyRecordSchema, r.data, path, (e) => this.log.warn({ path, err: e }, "removing an unreadable idempotency record"));
        at = rec ? rec.createdAt : -Infinity;
        if (r) this.createdAt.set(id, at);
      }
      if (isExpired(at, now, this.ttlMs)) {
        await this.remove(id);
        removed++;
      }
    }
    if (removed) this.log.info({ removed, kept: ids.length - removed }, "expired idempotency keys removed");
  }
}
