import { createHash } from "node:crypto";
import type { DeliveryRecord } from "./types.js";

/**
 * The alert ledger: the durable memory of which incidents were alerted and
 * what became of each delivery. See README.md for the guarantee it gives.
 */
export interface AlertLedger {
  /** True exactly once per key, durably (across restarts and failovers of the manager). */
  claim(key: string): Promise<boolean>;
  /** Creates or replaces the record with this id. */
  record(delivery: DeliveryRecord): Promise<void>;
  /** Newest first. */
  list(limit: number): Promise<DeliveryRecord[]>;
}

/** For tests and single-process use. */
export class MemoryAlertLedger implements AlertLedger {
  private readonly claims = new Set<string>();
  private readonly records = new Map<string, DeliveryRecord>();

  async claim(key: string): Promise<boolean> {
    if (this.claims.has(key)) return false;
    this.claims.add(key);
    return true;
  }

  async record(delivery: DeliveryRecord): Promise<void> {
    this.records.set(delivery.id, structuredClone(delivery));
  }

  async list(limit: number): Promise<DeliveryRecord[]> {
    return [...this.records.values()]
      .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
      .slice(0, Math.max(0, limit))
      .map((r) => structuredClone(r));
  }
}

/**
 * The few operations the ledger needs from a hierarchical store. The coord
 * layer implements it on ZooKeeper; `createIfAbsent` must be atomic (a ZK
 * create that treats NODEEXISTS as `false`), and all writes must go through
 * the primary's fenced session. Parents are created by the ledger itself,
 * top-down, with createIfAbsent.
 */
export interface LedgerKV {
  createIfAbsent(path: string, data: Buffer): Promise<boolean>;
  /** Creates or overwrites. */
  set(path: string, data: Buffer): Promise<void>;
  get(path: string): Promise<Buffer | undefined>;
  children(path: string): Promise<string[]>;
  /** Optional; without it prune() is a no-op and old entries stay. */
  remove?(path: string): Promise<void>;
}

/**
 * Ledger over a LedgerKV:
 *   <root>/alerts/<encoded key>          the claim (data: {"at": ms})
 *   <root>/alert-deliveries/<record id>  one DeliveryRecord as JSON
 * Record ids start with a zero-padded timestamp, so name order is time order.
 */
export class KvAlertLedger implements AlertLedger {
  private readonly claimsDir: string;
  private readonly deliveriesDir: string;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly kv: LedgerKV,
    private readonly opts: { root?: string; now?: () => number } = {},
  ) {
    const root = (opts.root ?? "/torca").replace(/\/+$/, "");
    this.claimsDir = `${root}/alerts`;
    this.deliveriesDir = `${root}/alert-deliveries`;
  }

  async claim(key: string): Promise<boolean> {
    await this.ensureDirs();
    const at = (this.opts.now ?? Date.now)();
    return this.kv.createIfAbsent(`${this.claimsDir}/${claimNodeName(key)}`, Buffer.from(JSON.stringify({ at, key })));
  }

  async record(delivery: DeliveryRecord): Promise<void> {
    await this.ensureDirs();
    await this.kv.set(`${this.deliveriesDir}/${recordNodeName(delivery.id)}`, Buffer.from(JSON.stringify(delivery)));
  }

  async list(limit: number): Promise<DeliveryRecord[]> {
    await this.ensureDirs();
    const names = (await this.kv.children(this.deliveriesDir)).sort().reverse().slice(0, Math.max(0, limit));
    const out: DeliveryRecord[] = [];
    for (const name of names) {
      const data = await this.kv.get(`${this.deliveriesDir}/${name}`);
      if (!data) continue; // removed between children() and get()
      try {
        out.push(JSON.parse(data.toString("utf8")) as DeliveryRecord);
      } catch {
        // A record that does not parse is skipped rather than failing the whole history.
      }
    }
    return out;
  }

  /**
   * Removes delivery records older than `before` and claims older than
   * `before`. Claims of incidents older than the dedup horizon cannot matter
   * any more: incident keys carry the attempt or the time they started.
   * Returns how many entries were removed.
   */
  async prune(before: number): Promise<number> {
    const remove = this.kv.remove?.bind(this.kv);
    if (!remove) return 0;
    await this.ensureDirs();
    let removed = 0;
    for (const name of await this.kv.children(this.deliveriesDir)) {
      const at = Number(name.slice(0, 15));
      if (Number.isFinite(at) && at < before) {
        await remove(`${this.deliveriesDir}/${name}`);
        removed++;
      }
    }
    for (const name of await this.kv.children(this.claimsDir)) {
      const at = claimTime(await this.kv.get(`${this.claimsDir}/${name}`));
      if (at !== undefined && at < before) {
        await remove(`${this.claimsDir}/${name}`);
        removed++;
      }
    }
    return removed;
  }

  private ensureDirs(): Promise<void> {
    this.ready ??= (async () => {
      for (const dir of [this.claimsDir, this.deliveriesDir]) {
        const parts = dir.split("/").filter(Boolean);
        for (let i = 1; i <= parts.length; i++) await this.kv.createIfAbsent("/" + parts.slice(0, i).join("/"), Buffer.alloc(0));
      }
    })().catch((e: unknown) => {
      this.ready = undefined; // let the next call try again
      throw e;
    });
    return this.ready;
  }
}

/**
 * A ZooKeeper node name for an incident key: keys contain "/" and ":", so they
 * are percent-encoded; very long keys are cut and given a hash suffix, which
 * keeps them unique.
 */
export function claimNodeName(key: string): string {
  const enc = encodeURIComponent(key).replace(/\./g, "%2E");
  if (enc.length <= 200) return enc;
  return `${enc.slice(0, 150)}~${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
}

function claimTime(data: Buffer | undefined): number | undefined {
  if (!data) return undefined;
  try {
    const at = (JSON.parse(data.toString("utf8")) as { at?: unknown }).at;
    return typeof at === "number" ? at : undefined;
  } catch {
    return undefined;
  }
}

function recordNodeName(id: string): string {
  return encodeURIComponent(id);
}
