import { EventEmitter } from "node:events";
import { UnavailableError } from "../src/common/errors.js";
import type { Logger } from "../src/common/logger.js";
import { ZkSession, type SessionCredentials } from "../src/coord/zk.js";
import { decodeEndpointRecord, namingPaths, sortEndpoints, toEndpoint, type Endpoint, type NamingPaths } from "./layout.js";
import { parseServiceName, serviceName, type ServiceName } from "./names.js";
import { SerialJob, WatchedChildren } from "./watched-children.js";

/**
 * The naming resolver: service name → endpoints, from an in-memory cache kept
 * current by ZooKeeper watches. The first resolve of a name loads it and arms
 * its watches; later resolves never touch ZooKeeper.
 *
 * Availability over freshness: while ZooKeeper is unreachable the resolver
 * keeps answering with the last endpoints it knew, marked `stale`. After a
 * reconnect (same session) every cached name is re-read; after a session
 * expiry a new session is opened and every name reloaded and re-watched.
 */

export interface ResolverOptions {
  /** ZooKeeper connect string, e.g. `127.0.0.1:2181`. */
  zookeeper: string;
  /** The cluster root (config `cluster.root`); default `/torca`. */
  root?: string;
  /** Requested session timeout; default 10 s. */
  sessionTimeoutMs?: number;
  /** How long one connection attempt may take; default max(10 s, 3 × session timeout). */
  connectTimeoutMs?: number;
  /** How long the first resolve of a name waits for ZooKeeper before failing; default 5 s. */
  loadTimeoutMs?: number;
  /** At most this many names are cached (least recently used go first); default 10,000. */
  maxNames?: number;
  logger?: Logger;
}

export type { Endpoint } from "./layout.js";

export interface Resolution {
  /** Canonical name: `web.frontend`, or `ns/web.frontend` outside the default namespace. */
  name: string;
  endpoints: Endpoint[];
  /** True while the resolver cannot confirm the answer with ZooKeeper (it is the last known one). */
  stale: boolean;
  /** Increases with every change of this name's endpoints (for long polls). */
  version: number;
}

export interface ServiceSummary {
  name: string;
  namespace: string;
  service: string;
  endpoints: number;
  nodes: string[];
  stale: boolean;
}

export type PickStrategy = "round-robin" | "random";
export type ConnectionState = "connecting" | "connected" | "disconnected" | "expired" | "closed";

export interface ResolverEvents {
  change: [name: string, endpoints: Endpoint[]];
  state: [state: ConnectionState];
}

interface Entry {
  name: ServiceName;
  watch: WatchedChildren;
  load: SerialJob;
  endpoints: Endpoint[];
  fingerprint: string;
  version: number;
  loaded: boolean;
  stale: boolean;
  ready: Promise<void>;
  markReady: () => void;
  rr: number;
}

interface Catalog {
  base: WatchedChildren;
  namespaces: Map<string, { watch: WatchedChildren; services: string[] }>;
  load: SerialJob;
  loaded: boolean;
}

export class Resolver extends EventEmitter<ResolverEvents> {
  private session?: ZkSession;
  private connState: ConnectionState = "connecting";
  private readonly entries = new Map<string, Entry>();
  private catalog?: Catalog;
  private readonly paths: NamingPaths;
  private readonly opts: Required<Omit<ResolverOptions, "logger" | "connectTimeoutMs">> & Pick<ResolverOptions, "logger" | "connectTimeoutMs">;
  private connecting?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  private wakeRetry?: () => void;
  private closed = false;

  constructor(o: ResolverOptions) {
    super();
    this.opts = { root: "/torca", sessionTimeoutMs: 10_000, loadTimeoutMs: 5000, maxNames: 10_000, ...o };
    this.opts.maxNames = Math.max(1, this.opts.maxNames);
    this.paths = namingPaths(this.opts.root);
  }

  get state(): ConnectionState {
    return this.connState;
  }

  /** The current session's id and password (diagnostics; tests use it to expire the session on purpose). */
  get sessionCredentials(): SessionCredentials | undefined {
    return this.session?.credentials;
  }

  /** Starts connecting in the background (retrying until it succeeds or the resolver closes). */
  start(): Promise<void> {
    this.connecting ??= this.connectLoop().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private setState(s: ConnectionState): void {
    if (this.connState === s) return;
    this.connState = s;
    this.emit("state", s);
  }

  private async connectLoop(): Promise<void> {
    let delay = 200;
    while (!this.closed) {
      try {
        const zk = await ZkSession.connect({
          connect: this.opts.zookeeper,
          sessionTimeoutMs: this.opts.sessionTimeoutMs,
          ...(this.opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.opts.connectTimeoutMs } : {}),
          ...(this.opts.logger ? { logger: this.opts.logger } : {}),
        });
        if (this.closed) {
          zk.close();
          return;
        }
        this.adopt(zk);
        return;
      } catch (e) {
        this.opts.logger?.warn({ err: (e as Error).message }, "naming resolver cannot reach ZooKeeper; retrying");
        await new Promise<void>((resolve) => {
          this.wakeRetry = resolve;
          this.retryTimer = setTimeout(resolve, delay);
        });
        this.retryTimer = undefined;
        this.wakeRetry = undefined;
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private adopt(zk: ZkSession): void {
    this.session = zk;
    zk.on("disconnected", () => {
      if (this.session !== zk) return;
      this.markAllStale();
      this.setState("disconnected");
    });
    zk.on("reconnected", () => {
      if (this.session !== zk) return;
      this.setState("connected");
      this.reloadAll();
    });
    const lost = (why: "expired" | "closed") => {
      if (this.session !== zk) return;
      this.session = undefined;
      this.markAllStale();
      if (this.closed) return;
      this.opts.logger?.warn({ why }, "naming resolver lost its ZooKeeper session; opening a new one");
      this.setState("expired");
      void this.start();
    };
    zk.once("expired", () => lost("expired"));
    zk.once("closed", () => lost("closed"));
    this.setState("connected");
    this.reloadAll();
  }

  private markAllStale(): void {
    for (const e of this.entries.values()) e.stale = true;
  }

  private reloadAll(): void {
    for (const e of this.entries.values()) void e.load.run().catch((err: unknown) => this.loadFailed(e.name.key, err));
    if (this.catalog) void this.catalog.load.run().catch((err: unknown) => this.loadFailed("(catalog)", err));
  }

  private loadFailed(what: string, err: unknown): void {
    // A failed read is retried by the reconnect or new-session reload; nothing to do here but tell.
    this.opts.logger?.debug({ name: what, err: (err as Error).message }, "naming read failed");
  }

  private liveSession(): ZkSession {
    const zk = this.session;
    if (!zk || !zk.isAlive) throw new UnavailableError("naming resolver has no ZooKeeper session");
    return zk;
  }

  private track(n: ServiceName): Entry {
    const existing = this.entries.get(n.key);
    if (existing) {
      // Least recently used order: move to the end.
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
      watch: new WatchedChildren(this.paths.service(n), (zk) => {
        if (zk === this.session && this.entries.get(n.key) === e) void e.load.run().catch((err: unknown) => this.loadFailed(n.key, err));
      }),
      load: new SerialJob(() => this.loadEntry(e)),
    };
    this.entries.set(n.key, e);
    this.evict();
    if (this.session) void e.load.run().catch((err: unknown) => this.loadFailed(n.key, err));
    return e;
  }

  private evict(): void {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.opts.maxNames) return;
      this.entries.delete(key);
      e.watch.dispose();
    }
  }

  private async loadEntry(e: Entry): Promise<void> {
    const zk = this.liveSession();
    const path = this.paths.service(e.name);
    const children = await e.watch.read(zk);
    const records = await Promise.all(children.map((c) => zk.getIfExists(`${path}/${c}`)));
    const endpoints = sortEndpoints(
      records.flatMap((r, i) => {
        const rec = r ? decodeEndpointRecord(r.data, `${path}/${children[i]}`) : undefined;
        return rec ? [toEndpoint(rec)] : [];
      }),
    );
    if (this.session !== zk) return;
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
      this.emit("change", e.name.key, endpoints);
    }
  }

  private async untilReady(ready: Promise<void>, what: string): Promise<void> {
    if (this.closed) throw new UnavailableError("naming resolver is closed");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError(`naming: ${what} could not be loaded from ZooKeeper within ${this.opts.loadTimeoutMs} ms`)), this.opts.loadTimeoutMs);
    });
    try {
      await Promise.race([ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Endpoints of a name with their freshness. Throws InvalidNameError, or UnavailableError for a name never loaded while ZooKeeper is away. */
  async resolveDetailed(name: string): Promise<Resolution> {
    const e = this.track(parseServiceName(name));
    if (!e.loaded) await this.untilReady(e.ready, e.name.key);
    return { name: e.name.key, endpoints: e.endpoints, stale: e.stale || this.connState !== "connected", version: e.version };
  }

  async resolve(name: string): Promise<Endpoint[]> {
    return (await this.resolveDetailed(name)).endpoints;
  }

  /** One endpoint of a name, or undefined when it has none. */
  async pick(name: string, strategy: PickStrategy = "round-robin"): Promise<Endpoint | undefined> {
    const r = await this.resolveDetailed(name);
    if (r.endpoints.length === 0) return undefined;
    if (strategy === "random") return r.endpoints[Math.floor(Math.random() * r.endpoints.length)];
    const e = this.entries.get(r.name)!;
    const ep = r.endpoints[e.rr % r.endpoints.length];
    e.rr = (e.rr + 1) % 1_000_000_007;
    return ep;
  }

  /** Resolves once the name's endpoints satisfy `ok` (checked now and on every change). */
  async waitFor(name: string, ok: (endpoints: Endpoint[]) => boolean, timeoutMs: number): Promise<Endpoint[]> {
    const first = await this.resolveDetailed(name);
    if (ok(first.endpoints)) return first.endpoints;
    return new Promise<Endpoint[]>((resolve, reject) => {
      const onChange = (n: string, eps: Endpoint[]) => {
        if (n !== first.name || !ok(eps)) return;
        cleanup();
        resolve(eps);
      };
      const timer = setTimeout(() => {
        cleanup();
        const now = this.entries.get(first.name)?.endpoints ?? [];
        reject(new UnavailableError(`naming: ${first.name} did not reach the expected endpoints within ${timeoutMs} ms (now ${now.length})`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off("change", onChange);
      };
      this.on("change", onChange);
    });
  }

  /** Every registered service (all namespaces) with its endpoint count, from watched caches. */
  async services(): Promise<ServiceSummary[]> {
    const c = this.ensureCatalog();
    if (!c.loaded) await this.untilReady(c.load.run(), "the service list");
    const names: Entry[] = [];
    for (const [ns, { services }] of c.namespaces) for (const s of services) names.push(this.track(serviceName(ns, s)));
    await Promise.all(names.filter((e) => !e.loaded).map((e) => this.untilReady(e.ready, e.name.key).catch(() => undefined)));
    return names
      .map((e) => ({
        name: e.name.key,
        namespace: e.name.namespace,
        service: e.name.service,
        endpoints: e.endpoints.length,
        nodes: [...new Set(e.endpoints.map((x) => x.node))].sort(),
        stale: e.stale || this.connState !== "connected",
      }))
      .sort((a, b) => (a.namespace === b.namespace ? (a.service < b.service ? -1 : 1) : a.namespace < b.namespace ? -1 : 1));
  }

  private ensureCatalog(): Catalog {
    if (this.catalog) return this.catalog;
    const reload = (zk: ZkSession) => {
      if (zk === this.session) void c.load.run().catch((err: unknown) => this.loadFailed("(catalog)", err));
    };
    const c: Catalog = {
      base: new WatchedChildren(this.paths.base, reload),
      namespaces: new Map(),
      loaded: false,
      load: new SerialJob(async () => {
        const zk = this.liveSession();
        const nsNames = await c.base.read(zk);
        for (const [ns, v] of c.namespaces) {
          if (!nsNames.includes(ns)) {
            v.watch.dispose();
            c.namespaces.delete(ns);
          }
        }
        for (const ns of nsNames) {
          let v = c.namespaces.get(ns);
          if (!v) {
            v = { watch: new WatchedChildren(this.paths.namespace(ns), reload), services: [] };
            c.namespaces.set(ns, v);
          }
          const services = await v.watch.read(zk);
          v.services = services.filter((s) => {
            try {
              serviceName(ns, s);
              return true;
            } catch {
              return false;
            }
          });
        }
        for (const [ns, v] of c.namespaces) for (const s of v.services) this.track(serviceName(ns, s));
        c.loaded = true;
      }),
    };
    this.catalog = c;
    return c;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    for (const e of this.entries.values()) e.watch.dispose();
    const zk = this.session;
    this.session = undefined;
    zk?.close();
    this.setState("closed");
  }
}

/**
 * Opens a resolver and waits for its first ZooKeeper session (DESIGN.md):
 *
 *   const resolver = await createResolver({ zookeeper: "127.0.0.1:2181" });
 *
 * Rejects when ZooKeeper cannot be reached within `connectTimeoutMs`; use
 * `new Resolver(opts).start()` instead to keep retrying in the background.
 */
export async function createResolver(o: ResolverOptions): Promise<Resolver> {
  const r = new Resolver(o);
  const limit = o.connectTimeoutMs ?? Math.max(10_000, 3 * (o.sessionTimeoutMs ?? 10_000));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      r.start(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new UnavailableError(`naming: cannot reach ZooKeeper at ${o.zookeeper} within ${limit} ms`)), limit);
      }),
    ]);
  } catch (e) {
    r.close();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return r;
}
