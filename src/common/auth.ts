import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Config } from "./config.js";
import { ConfigError, UnauthorizedError } from "./errors.js";
import { requireGrant, type Caller, type Grant, type Role } from "../auth/grants.js";
import { digestOf, sameDigest } from "../auth/secret.js";

export type { Role } from "../auth/grants.js";

/** Reads a token file, creating it (0600, 256 random bits) when `create` and it is missing. */
export function readTokenFile(path: string, create = false, key = "cluster.tokenFile"): string {
  if (!existsSync(path)) {
    if (!create) throw new ConfigError(`token file ${path} does not exist`, key);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  const t = readFileSync(path, "utf8").trim();
  if (t.length < 16) throw new ConfigError(`token in ${path} is too short (at least 16 characters)`, key);
  return t;
}

interface TokenEntry {
  name: string;
  role: Role;
  namespaces: "*" | readonly string[];
  sha256: string;
}

/** Tokens created at run time (the managers' token store); looked up by secret. */
export interface DynamicTokens {
  /** The caller whose secret has this SHA-256 digest (hex). */
  lookup(digest: string): Caller | undefined;
  /** A fresh read of the shared set, for a secret not (yet) known. */
  refresh(): Promise<void>;
}

/**
 * The bearer tokens a daemon accepts: those of its config (the cluster admin
 * token, `cluster.tokens`: by secret, file or SHA-256 digest) and, on
 * managers, the token store. Only digests are held; comparison is constant-time.
 */
export class TokenTable {
  private readonly entries: TokenEntry[];
  private dynamic?: DynamicTokens;

  constructor(adminToken: string | undefined, extra: { name: string; role: Role; token?: string; sha256?: string; namespaces?: string[] }[] = []) {
    this.entries = [
      ...(adminToken ? [{ name: "cluster", role: "admin" as const, namespaces: "*" as const, sha256: digestOf(adminToken) }] : []),
      ...extra.map((e) => ({ name: e.name, role: e.role, namespaces: e.namespaces ?? ("*" as const), sha256: e.sha256 ?? digestOf(e.token!) })),
    ];
  }

  /** The cluster (admin) token: the CLI's on this host, and the daemons' own when they have no credential of their own. */
  static adminTokenOf(config: Config): string {
    return readTokenFile(config.cluster.tokenFile);
  }

  /**
   * The credential this daemon presents to its peers: an agent's agent-role
   * token (`cluster.agentTokenFile`), a manager's manager-role token
   * (`cluster.managerTokenFile`), else the admin token as before.
   */
  static credentialOf(config: Config, kind: "agent" | "manager"): string {
    const file = kind === "agent" ? config.cluster.agentTokenFile : config.cluster.managerTokenFile;
    return file ? readTokenFile(file, false, `cluster.${kind}TokenFile`) : TokenTable.adminTokenOf(config);
  }

  /**
   * The tokens a daemon accepts. An agent with its own credential
   * (`cluster.agentTokenFile`) does not read the admin token: it is not stored
   * on agents, which accept the managers' token and the admin token by their digests.
   */
  static fromConfig(config: Config, createAdmin = false, kind: "agent" | "manager" = "manager"): TokenTable {
    const admin = kind === "agent" && config.cluster.agentTokenFile ? undefined : readTokenFile(config.cluster.tokenFile, createAdmin);
    const c = config.cluster;
    // Agents share one credential and accept it from each other (role agent: fetching package blobs, docs/packages.md).
    const agentsDigest = c.agentTokenSha256 ?? (kind === "agent" && c.agentTokenFile ? digestOf(readTokenFile(c.agentTokenFile, false, "cluster.agentTokenFile")) : undefined);
    const peers = [
      ...(agentsDigest ? [{ name: "agents", role: "agent" as const, sha256: agentsDigest }] : []),
      ...(c.managerTokenSha256 ? [{ name: "managers", role: "manager" as const, sha256: c.managerTokenSha256 }] : []),
      ...(c.adminTokenSha256 && !admin ? [{ name: "cluster", role: "admin" as const, sha256: c.adminTokenSha256 }] : []),
    ];
    const extra = config.cluster.tokens.map((t) => ({
      name: t.name,
      role: t.role,
      ...(t.sha256 ? { sha256: t.sha256 } : { token: t.token ?? readTokenFile(t.tokenFile!, false, "cluster.tokens") }),
      ...(t.namespaces ? { namespaces: t.namespaces } : {}),
    }));
    return new TokenTable(admin, [...peers, ...extra]);
  }

  /** Adds the run-time tokens (the manager's store for its current ZooKeeper session). */
  useDynamic(d: DynamicTokens | undefined): void {
    this.dynamic = d;
  }

  /** Names of the config's tokens (the store refuses them for new tokens). */
  get configNames(): ReadonlySet<string> {
    return new Set(this.entries.map((e) => e.name));
  }

  /** The caller holding `grant`, or throws 401 (unknown, expired) / 403 (lacks it); from memory only. */
  authorize(authorization: string | undefined, grant: Grant): Caller {
    const caller = this.identify(secretOf(authorization), Date.now());
    if (!caller) throw new UnauthorizedError("invalid bearer token");
    requireGrant(caller, grant);
    return caller;
  }

  /** The caller a bearer token belongs to, or 401; an unknown secret makes one fresh read of the token store first. */
  async identifyFresh(authorization: string | undefined): Promise<Caller> {
    const secret = secretOf(authorization);
    let caller = this.identify(secret, Date.now());
    if (!caller && this.dynamic) {
      await this.dynamic.refresh();
      caller = this.identify(secret, Date.now());
    }
    if (!caller) throw new UnauthorizedError("invalid bearer token");
    return caller;
  }

  private identify(secret: string, now: number): Caller | undefined {
    const d = digestOf(secret);
    let hit: Caller | undefined;
    for (const e of this.entries) if (sameDigest(e.sha256, d)) hit = { name: e.name, role: e.role, namespaces: e.namespaces };
    hit ??= this.dynamic?.lookup(d);
    if (hit?.expiresAt !== undefined && hit.expiresAt <= now) throw new UnauthorizedError(`token "${hit.name}" expired at ${new Date(hit.expiresAt).toISOString()}`);
    return hit;
  }
}

function secretOf(authorization: string | undefined): string {
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
  if (!m) throw new UnauthorizedError();
  return m[1]!;
}
