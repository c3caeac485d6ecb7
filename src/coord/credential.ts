import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { DIGEST_CREDENTIAL, type Config } from "../common/config.js";
import { ConfigError } from "../common/errors.js";
import type { ZkAuth } from "./zk/acl.js";

/** The credential daemons give ZooKeeper (`cluster.zookeeperAuth`, inline or in a file); undefined leaves znodes open. */
export function zookeeperAuthOf(cluster: Pick<Config["cluster"], "root" | "zookeeperAuth">): ZkAuth | undefined {
  const given = cluster.zookeeperAuth;
  if (given === undefined) return undefined;
  if (typeof given === "string") return { credential: given, root: cluster.root };
  let text: string;
  try {
    text = readFileSync(given.file, "utf8").trim();
  } catch (e) {
    throw new ConfigError(`cannot read the ZooKeeper credential ${given.file}: ${(e as Error).message}`, "cluster.zookeeperAuth.file");
  }
  if (!DIGEST_CREDENTIAL.test(text)) throw new ConfigError(`${given.file} must hold one "user:password" line`, "cluster.zookeeperAuth.file");
  return { credential: text, root: cluster.root };
}

/** Creates a credential file (0600, user "torca", 256 random bits) unless it exists; the local cell's. */
export function ensureZookeeperCredentialFile(path: string): void {
  if (existsSync(path)) return;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `torca:${randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}
