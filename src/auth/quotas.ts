import { z } from "zod";
import { NotFoundError } from "../common/errors.js";
import { readJson } from "../common/json.js";
import type { Logger } from "../common/logger.js";
import { isZkCode, ZK, type ZkSession } from "../coord/zk.js";
import type { Quota } from "../manager/quota/admission.js";
import { NAMESPACE_NAME } from "./token-store.js";
import { rereadUntilArmed } from "../coord/read-retry.js";

/**
 * Namespace quotas, shared by every manager through ZooKeeper: one znode,
 * `<root>/quotas`, holds every namespace's quota, so that a change is one
 * compare-and-set and the check that prod quotas together fit the cell sees
 * all of them at one version (two admins raising two namespaces at once
 * cannot both pass on the same headroom). Every manager keeps the set in
 * memory behind a data watch for the API and pages; admission reads it fresh.
 */

const BandQuotaSchema = z.object({ cpu: z.number().nonnegative(), memory: z.number().int().nonnegative(), instances: z.number().int().nonnegative().optional() }).strict();

const StoredQuotaSchema = z
  .object({
    prod: BandQuotaSchema,
    batch: BandQuotaSchema,
    setAt: z.number(),
    setBy: z.string(),
  })
  .strict();
export type StoredQuota = z.infer<typeof StoredQuotaSchema>;

const StoredQuotasSchema = z.object({ namespaces: z.record(z.string().regex(NAMESPACE_NAME), StoredQuotaSchema) }).strict();

/** A compare-and-set that lost to a concurrent change is retried this many times, each on a fresh read. */
const MAX_CAS_TRIES = 10;

export class QuotaStore {
  private readonly path: string;
  private quotas = new Map<string, StoredQuota>();
  private closed = false;

  constructor(
    private readonly zk: ZkSession,
    root: string,
    private readonly log: Logger,
  ) {
    this.path = `${root}/quotas`;
  }

  async start(): Promise<void> {
    await this.zk.ensurePath(this.path);
    await this.reload(true);
  }

  close(): void {
    this.closed = true;
  }

  /** The namespace's quota as last seen (undefined: unlimited). */
  get(namespace: string): StoredQuota | undefined {
    return this.quotas.get(namespace);
  }

  /** Every quota as last seen, by namespace. */
  all(): ReadonlyMap<string, StoredQuota> {
    return this.quotas;
  }

  /**
   * The namespace's quota as ZooKeeper holds it now (synced with its leader):
   * what admission checks against. While the servers fail over (a sync or read
   * lost with its connection) the watched copy answers instead: it is behind
   * only by a change still in flight, and a submission must not fail because
   * a ZooKeeper server died.
   */
  async current(namespace: string): Promise<Quota | undefined> {
    try {
      // The read is sent right behind the sync, not after its reply: a session's requests apply in order, so it still reads what the sync caught up to.
      const synced = this.zk.sync(this.path);
      const read = this.read();
      read.catch(() => undefined);
      await synced;
      return (await read).quotas.get(namespace);
    } catch (e) {
      if (!this.zk.isAlive) throw e;
      this.log.warn({ err: e, namespace }, "quota read failed; admitting against the watched copy");
      return this.quotas.get(namespace);
    }
  }

  /**
   * Sets a namespace's quota. `check` sees every other quota as stored at the
   * version being replaced, and throws to refuse.
   */
  async set(namespace: string, quota: Quota, setBy: string, check: (current: ReadonlyMap<string, Quota>) => void): Promise<StoredQuota> {
    const stored: StoredQuota = { prod: quota.prod, batch: quota.batch, setAt: Date.now(), setBy };
    await this.change((all) => {
      check(all);
      all.set(namespace, stored);
    });
    return stored;
  }

  /** Removes a namespace's quota: it is unlimited again. */
  async remove(namespace: string): Promise<void> {
    await this.change((all) => {
      if (!all.delete(namespace)) throw new NotFoundError("quota of namespace", namespace);
    });
  }

  /** Applies `edit` to the stored set as one compare-and-set, re-read and retried when another manager wrote in between. */
  private async change(edit: (all: Map<string, StoredQuota>) => void): Promise<void> {
    for (let tries = 1; ; tries++) {
      await this.zk.sync(this.path);
      const { quotas, version } = await this.read();
      if (version === undefined) {
        await this.zk.ensurePath(this.path);
        continue;
      }
      edit(quotas);
      try {
        await this.zk.set(this.path, JSON.stringify({ namespaces: Object.fromEntries([...quotas].sort(([a], [b]) => a.localeCompare(b))) }), version);
        this.quotas = quotas;
        return;
      } catch (e) {
        if (!isZkCode(e, ZK.BADVERSION) || tries >= MAX_CAS_TRIES) throw e;
      }
    }
  }

  /** No node (removed by hand since `start`) holds no quotas; `version` is then undefined. */
  private async read(): Promise<{ quotas: Map<string, StoredQuota>; version?: number }> {
    const r = await this.zk.getIfExists(this.path);
    return r ? { quotas: this.parse(r.data), version: r.stat.version } : { quotas: new Map() };
  }

  /** An empty node (as `start` creates it) holds no quotas. */
  private parse(data: Buffer): Map<string, StoredQuota> {
    if (data.length === 0) return new Map();
    return new Map(Object.entries(readJson(StoredQuotasSchema, data, this.path).namespaces));
  }

  /** `watch`: re-arm the one-shot data watch (at start and each time it fires). */
  private async reload(watch: boolean): Promise<void> {
    if (this.closed || !this.zk.isAlive) return;
    const r = await this.zk.getIfExists(this.path, watch ? () => void this.onChange() : undefined);
    this.quotas = r ? this.parse(r.data) : new Map();
  }

  private onChange(): Promise<void> {
    return rereadUntilArmed(
      () => this.reload(true),
      () => !this.closed,
      (e) => this.log.warn({ err: e }, "re-reading quotas failed; retrying in 1 s"),
    );
  }
}
