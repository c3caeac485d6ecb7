import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Config } from "./config.js";
import { ConfigError, ForbiddenError, UnauthorizedError } from "./errors.js";

export type Role = "read" | "submit" | "admin";
const RANK: Record<Role, number> = { read: 0, submit: 1, admin: 2 };

/** Reads the cluster token file, creating it (0600, 256 random bits) when `create` and it is missing. */
export function readTokenFile(path: string, create = false): string {
  if (!existsSync(path)) {
    if (!create) throw new ConfigError(`token file ${path} does not exist`, "cluster.tokenFile");
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  const t = readFileSync(path, "utf8").trim();
  if (t.length < 16) throw new ConfigError(`token in ${path} is too short (at least 16 characters)`, "cluster.tokenFile");
  return t;
}

interface TokenEntry {
  name: string;
  role: Role;
  token: Buffer;
}

/** Bearer tokens with roles: read < submit < admin. The cluster token is admin. */
export class TokenTable {
  private readonly entries: TokenEntry[];

  constructor(adminToken: string, extra: { name: string; role: Role; token: string }[] = []) {
    this.entries = [{ name: "cluster", role: "admin", token: Buffer.from(adminToken) }, ...extra.map((e) => ({ ...e, token: Buffer.from(e.token) }))];
  }

  /** The cluster (admin) token the daemons use among themselves. */
  static adminTokenOf(config: Config): string {
    return readTokenFile(config.cluster.tokenFile);
  }

  static fromConfig(config: Config, createAdmin = false): TokenTable {
    const admin = readTokenFile(config.cluster.tokenFile, createAdmin);
    const extra = config.cluster.tokens.map((t) => ({ name: t.name, role: t.role, token: t.token ?? readTokenFile(t.tokenFile!) }));
    return new TokenTable(admin, extra);
  }

  /** Returns the caller's name and role, or throws 401/403. */
  authorize(authorization: string | undefined, needed: Role): { name: string; role: Role } {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
    if (!m) throw new UnauthorizedError();
    const given = Buffer.from(m[1]!);
    const hit = this.entries.find((e) => e.token.length === given.length && timingSafeEqual(e.token, given));
    if (!hit) throw new UnauthorizedError("invalid bearer token");
    if (RANK[hit.role] < RANK[needed]) throw new ForbiddenError(`token "${hit.name}" has role ${hit.role}; this needs ${needed}`);
    return { name: hit.name, role: hit.role };
  }
}
