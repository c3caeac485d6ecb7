import type { Logger } from "../common/logger.js";
import { aclFor, type ZkAuth } from "./zk/acl.js";
import type { ZkSession } from "./zk.js";

/** Nodes handled at once: a directory of 100,000 tasks is walked in slices, not all in flight. */
const BATCH = 256;

/**
 * Gives the znodes of a cell created before ACLs the ACLs of acl.ts. Runs at
 * every manager start and costs one read when there is nothing to do: every
 * znode created with a credential has had its ACL set (ACL version ≥ 1),
 * and the root is set last, so a root whose ACL was never set marks a cell
 * still to migrate. Managers running it at once set the same ACLs. Resolves
 * to the number of nodes set.
 */
export async function migrateAcls(zk: ZkSession, auth: ZkAuth, log?: Logger): Promise<number> {
  const root = await zk.exists(auth.root);
  if (!root || root.aversion > 0) return 0;
  const t0 = Date.now();
  let set = 0;
  const visit = async (path: string): Promise<void> => {
    const children = await zk.children(path);
    for (let i = 0; i < children.length; i += BATCH) await Promise.all(children.slice(i, i + BATCH).map((c) => visit(`${path}/${c}`)));
    // A node deleted meanwhile is no error (setAcl).
    await zk.setAcl(path, aclFor(auth, path));
    set++;
  };
  await visit(auth.root);
  log?.info({ nodes: set, ms: Date.now() - t0 }, "znodes of a cell from before ACLs given their ACLs");
  return set;
}
