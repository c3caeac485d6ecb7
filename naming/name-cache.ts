import { UnavailableError } from "../src/common/errors.js";
import type { Logger } from "../src/common/logger.js";
import type { ZkSession } from "../src/coord/zk.js";
import { decodeEndpointRecord, sortEndpoints, toEndpoint, type Endpoint, type NamingPaths } from "./layout.js";
import type { ServiceName } from "./names.js";
import { SerialJob, WatchedChildren } from "./watched-children.js";

/**
 * The resolver's cache: the endpoints of each name asked for, kept current by
 * child watches on its service node, at most `maxNames` names (least recently
 * used go first). A name is loaded on the session the resolver holds; the
 * resolver reloads every name on a reconnect and on a new session.
 */

export interface CachedName {
  name: ServiceName;
  endpoints: Endpoint[];
  /** Increases with every change of the endpoints. */
  version: number;
  loaded: boolean;
  /** True until a read on a connected session confirmed the endpoints. */
  stale: boolean;
  /** Settles once the name was first loaded. */
  ready: Promise<void>;
  /** Round-robin position (endpoint picking). */
  rr: number;
}

interface Entry extends CachedName {
  watch: WatchedChildren;
  load: SerialJob;
  fingerprint: string;
  markReady: () => void;
}

export interface NameCacheOptions {
  paths: NamingPaths;
  maxNames: number;
  /** The session to read on; undefined while there is none. */
  session: () => ZkSession | undefined;
  onChange: (name: string, endpoints: Endpoint[]) => void;
  logger?: Logger;
}

/** The live session of `o`, or UnavailableError. */
export function liveSessionOf(session: () => ZkSession | undefined): ZkSession {
  const zk = session();
  if (!zk || !zk.isAlive) throw new UnavailableError("naming resolver has no ZooKeeper session");
  return zk;
}

export class NameCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: NameCacheOptions) {}

  get(key: string): CachedName | undefined {
    return this.entries.get(key);
  }

  /** The cached name, tracked (and its load started) if it is new; marks it most recently used. */
  track(n: ServiceName): CachedName {
    const existing = this.entries.get(n.key);
    if (existing) {
      this.entries.delete(n.key);
      this.entries.set(n.key, existing);
      return existing;
    }
    let markReady!: () => void;
    const ready = new Promise<void>((r) => (markReady = r));
    const e: Entry = {
      name: n,
      endpoints: [],
      fingerprint: "[]",
      version: 0,
      loaded: false,
      stale: true,
      ready,
      markReady,
      rr: 0,
      watch: new WatchedChildren(this.o.paths.service(n), (zk) => {
        if (zk === this.o.session() && this.entries.get(n.key) === e) this.reload(e);
      }),
      load: new SerialJob(() => this.loadEntry(e)),
    };
    this.entries.set(n.key, e);
    this.evict();
    if (this.o.session()) this.reload(e);
    return e;
  }

  reloadAll(): void {
    for (const e of this.entries.values()) this.reload(e);
  }

  markAllStale(): void {
    for (const e of this.entries.values()) e.stale = true;
  }

  /** Later watch events are ignored. */
  dispose(): void {
    for (const e of this.entries.values()) e.watch.dispose();
  }

  private reload(e: Entry): void {
    void e.load.run().catch((err: unknown) => loadFailed(this.o.logger, e.name.key, err));
  }

  private evict(): void {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.o.maxNames) return;
      this.entries.delete(key);
      e.watch.dispose();
    }
  }

  private async loadEntry(e: Entry): Promise<void> {
    const zk = liveSessionOf(this.o.session);
    const path = this.o.paths.service(e.name);
    const children = await e.watch.read(zk);
    const records = await Promise.all(children.map((c) => zk.getIfExists(`${path}/${c}`)));
    const endpoints = sortEndpoints(
      records.flatMap((r, i) => {
        const rec = r ? decodeEndpointRecord(r.data, `${path}/${children[i]}`) : undefined;
        return rec ? [toEndpoint(rec)] : [];
      }),
    );
    if (this.o.session() !== zk) return;
    // Only a read on a connected session confirms the answer.
    e.stale = !zk.isConnected;
    const fingerprint = JSON.stringify(endpoints);
    const changed = fingerprint !== e.fingerprint;
    e.endpoints = endpoints;
    e.fingerprint = fingerprint;
    if (!e.loaded) {
      e.loaded = true;
      e.markReady();
    }
    if (changed) {
      e.version += 1;
      this.o.onChange(e.name.key, endpoints);
    }
  }
}

/** A failed read is retried by the reconnect or new-session reload; nothing to do here but tell. */
export function loadFailed(log: Logger | undefined, what: string, err: unknown): void {
  log?.debug({ name: what, err: (err as Error).message }, "naming read failed");
}
