import { createHash } from "node:crypto";

/**
 * Who may do what to Torca's znodes: digest ACLs keyed on the cell's one
 * ZooKeeper credential (`cluster.zookeeperAuth`, "user:password").
 *
 *   <root>/naming and below   Torca: all; anyone: read (resolvers and DNS need no credential)
 *   <root> and the rest below Torca: all; nobody else anything (jobs carry their environment)
 *   ancestors of <root>       Torca: all; anyone: read (they hold only the way down)
 *
 * The binding creates every znode with the open ACL (its a_create takes no
 * ACL argument), so the session sends a set_acl right behind each create
 * (znodes.ts): one session's requests are applied in order, which leaves
 * other sessions only the instant between the two transactions.
 */

/** One ACL entry as the binding takes and gives it. */
export interface AclEntry {
  perm: number;
  scheme: "world" | "digest";
  id: string;
}

/** ZooKeeper's permission bits. */
export const PERM = Object.freeze({ READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 });

/** The credential daemons authenticate with, and the subtree it guards. */
export interface ZkAuth {
  /** "user:password" (ZooKeeper's digest scheme). */
  credential: string;
  root: string;
}

/** The digest scheme's id for a credential: user:base64(sha1("user:password")). */
export function digestId(credential: string): string {
  const user = credential.slice(0, credential.indexOf(":"));
  return `${user}:${createHash("sha1").update(credential).digest("base64")}`;
}

/** The ACL a znode at `path` gets under `auth`. */
export function aclFor(auth: ZkAuth, path: string): AclEntry[] {
  const torca: AclEntry = { perm: PERM.ALL, scheme: "digest", id: digestId(auth.credential) };
  const anyoneReads: AclEntry = { perm: PERM.READ, scheme: "world", id: "anyone" };
  const naming = `${auth.root}/naming`;
  const underRoot = path === auth.root || path.startsWith(`${auth.root}/`);
  const isNaming = path === naming || path.startsWith(`${naming}/`);
  return isNaming || !underRoot ? [torca, anyoneReads] : [torca];
}
