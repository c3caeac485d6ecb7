import { EventEmitter } from "node:events";
import { UnavailableError } from "../src/common/errors.js";
import { SessionKeeper, type SessionEnd } from "../src/coord/session-keeper.js";
import { defaultConnectTimeoutMs, type SessionCredentials, type ZkSession } from "../src/coord/zk.js";
import { ServiceCatalog } from "./catalog.js";
import { namingPaths, type Endpoint, type NamingPaths } from "./layout.js";
import { NameCache, type CachedName } from "./name-cache.js";
import { parseServiceName } from "./names.js";
import { pickEndpoint, type PickStrategy } from "./pick.js";
import { RESOLVER_DEFAULTS, settingsOf, type ResolverOptions, type ResolverSettings } from "./resolver-options.js";

/**
 * The naming resolver: service name → endpoints, from an in-memory cache kept
 * current by ZooKeeper watches. The first resolve of a name loads it and arms
 * its watches; later resolves never touch ZooKeeper.
 *
 * Availability over freshness: while ZooKeeper is unreachable the resolver
 * keeps answering with the last endpoints it knew, marked `stale`. After a
 * reconnect (same session) every cached name is re-read; after a session
 * expiry the session keeper opens a new session and every name is reloaded
 * and re-watched. The cache is name-cache.ts, the service list catalog.ts.
 */

export type { Endpoint } from "./layout.js";
export type { PickStrategy } from "./pick.js";
export type { ResolverOptions } from "./resolver-options.js";

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

export type ConnectionState = "connecting" | "connected" | "disconnected" | "expired" | "closed";

export interface ResolverEvents {
  change: [name: string, endpoints: Endpoint[]];
  state: [state: ConnectionState];
}

export class Resolver extends EventEmitter<ResolverEvents> {
  private connState: ConnectionState = "connecting";
  private readonly opts: ResolverSettings;
  private readonly paths: NamingPaths;
  private readonly keeper: SessionKeeper;
  private readonly cache: NameCache;
  private catalog?: ServiceCatalog;
  private closed = false;
  private readonly session = () => (this.closed ? undefined : this.keeper.session);

  constructor(o: ResolverOptions) {
    super();
    this.opts = settingsOf(o);
    this.paths = namingPaths(this.opts.root);
    this.cache = new NameCache({
      paths: this.paths,
      maxNames: this.opts.maxNames,
      session: this.session,
      onChange: (name, endpoints) => this.emit("change", name, endpoints),
      ...(this.opts.logger ? { logger: this.opts.logger } : {}),
    });
    this.keeper = new SessionKeeper(
      { onSession: (zk) => this.adopt(zk), onSessionLost: (_zk, why) => this.lost(why) },
      {
        connect: this.opts.zookeeper,
        sessionTimeoutMs: this.opts.sessionTimeoutMs,
        ...(this.opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.opts.connectTimeoutMs } : {}),
        retryDelayMs: RESOLVER_DEFAULTS.retryDelayMs,
        retryMaxDelayMs: RESOLVER_DEFAULTS.retryMaxDelayMs,
        ...(this.opts.logger ? { logger: this.opts.logger } : {}),
      },
    );
  }

  get state(): ConnectionState {
    return this.connState;
  }

  /** The current session's id and password (diagnostics; tests use it to expire the session on purpose). */
  get sessionCredentials(): SessionCredentials | undefined {
    return this.session()?.credentials;
  }

  /** Starts connecting in the background; resolves once a session is up (retrying until then) or the resolver closes. */
  start(): Promise<void> {
    void this.keeper.start();
    return this.keeper.live();
  }

  private setState(s: ConnectionState): void {
    if (this.connState === s) return;
    this.connState = s;
    this.emit("state", s);
  }

  private adopt(zk: ZkSession): void {
    zk.on("disconnected", () => {
      if (this.session() !== zk) return;
      this.cache.markAllStale();
      this.setState("disconnected");
    });
    zk.on("reconnected", () => {
      if (this.session() !== zk) return;
      this.setState("connected");
      this.reloadAll();
    });
    this.setState("connected");
    this.reloadAll();
  }

  private lost(why: SessionEnd): void {
    this.cache.markAllStale();
    this.opts.logger?.warn({ why }, "naming resolver lost its ZooKeeper session; opening a new one");
    this.setState("expired");
  }

  private reloadAll(): void {
    this.cache.reloadAll();
    this.catalog?.reload();
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

  private async loaded(key: string): Promise<CachedName> {
    const e = this.cache.track(parseServiceName(key));
    if (!e.loaded) await this.untilReady(e.ready, e.name.key);
    return e;
  }

  private isStale(e: CachedName): boolean {
    return e.stale || this.connState !== "connected";
  }

  /** Endpoints of a name with their freshness. Throws InvalidNameError, or UnavailableError for a name never loaded while ZooKeeper is away. */
  async resolveDetailed(name: string): Promise<Resolution> {
    const e = await this.loaded(name);
    return { name: e.name.key, endpoints: e.endpoints, stale: this.isStale(e), version: e.version };
  }

  async resolve(name: string): Promise<Endpoint[]> {
    return (await this.resolveDetailed(name)).endpoints;
  }

  /** One endpoint of a name, or undefined when it has none. */
  async pick(name: string, strategy: PickStrategy = "round-robin"): Promise<Endpoint | undefined> {
    return pickEndpoint(await this.loaded(name), strategy);
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
        const now = this.cache.get(first.name)?.endpoints ?? [];
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
    const c = (this.catalog ??= new ServiceCatalog(this.paths, this.session, (n) => this.cache.track(n), this.opts.logger));
    if (!c.loaded) await this.untilReady(c.load(), "the service list");
    const names = c.names().map((n) => this.cache.track(n));
    await Promise.all(names.filter((e) => !e.loaded).map((e) => this.untilReady(e.ready, e.name.key).catch(() => undefined)));
    return names
      .map((e) => ({
        name: e.name.key,
        namespace: e.name.namespace,
        service: e.name.service,
        endpoints: e.endpoints.length,
        nodes: [...new Set(e.endpoints.map((x) => x.node))].sort(),
        stale: this.isStale(e),
      }))
      .sort((a, b) => (a.namespace === b.namespace ? (a.service < b.service ? -1 : 1) : a.namespace < b.namespace ? -1 : 1));
  }

  close(): void {
    if (this.closed) return;
    const zk = this.keeper.session;
    this.closed = true;
    this.keeper.stop();
    this.cache.dispose();
    zk?.close();
    this.setState("closed");
  }
}

/**
 * Opens a resolver and waits for its first ZooKeeper session (docs/contracts.md, "Naming"):
 *
 *   const resolver = await createResolver({ zookeeper: "127.0.0.1:2181" });
 *
 * Rejects when ZooKeeper cannot be reached within `connectTimeoutMs`; use
 * `new Resolver(opts).start()` instead to keep retrying in the background.
 */
export async function createResolver(o: ResolverOptions): Promise<Resolver> {
  const r = new Resolver(o);
  const limit = o.connectTimeoutMs ?? defaultConnectTimeoutMs(o.sessionTimeoutMs ?? RESOLVER_DEFAULTS.sessionTimeoutMs);
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
