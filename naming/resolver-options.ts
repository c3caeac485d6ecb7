import type { Logger } from "../src/common/logger.js";

/** The resolver's options and their defaults, normalized once at construction. */

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

export const RESOLVER_DEFAULTS = Object.freeze({
  root: "/torca",
  sessionTimeoutMs: 10_000,
  loadTimeoutMs: 5000,
  maxNames: 10_000,
  /** First pause after a failed connect, doubled up to the second. */
  retryDelayMs: 200,
  retryMaxDelayMs: 5000,
});

export type ResolverSettings = Required<Omit<ResolverOptions, "logger" | "connectTimeoutMs">> & Pick<ResolverOptions, "logger" | "connectTimeoutMs">;

export function settingsOf(o: ResolverOptions): ResolverSettings {
  return {
    ...o,
    root: o.root ?? RESOLVER_DEFAULTS.root,
    sessionTimeoutMs: o.sessionTimeoutMs ?? RESOLVER_DEFAULTS.sessionTimeoutMs,
    loadTimeoutMs: o.loadTimeoutMs ?? RESOLVER_DEFAULTS.loadTimeoutMs,
    maxNames: Math.max(1, o.maxNames ?? RESOLVER_DEFAULTS.maxNames),
  };
}

