import type { Logger } from "../common/logger.js";
import { aclFor, sameAcl, type ZkAuth } from "./zk/acl.js";
import type { ZkSession } from "./zk.js";

/** Nodes handled at once: a directory of 100,000 tasks is walked in slices, not all in flight. */
const BATCH = 256;

/**
 * Gives the znodes of a cell created before ACLs (or by daemons without a
 * credential) the ACLs of acl.ts. Runs at every manager start and costs one
 * read when there is nothing to do: the root is set last, so a root with its
 * ACL means every node below had its ACL set. Managers running it at once
 * set the same ACLs. Resolves to the number of nodes changed.
 */
export async function migrateAcls(zk: ZkSession, auth: ZkAuth, log?: Logger): Promise<number> {
  const rootAcl = await zk.getAcl(auth.root);
  if (!rootAcl || sameAcl(rootAcl, aclFor(auth, auth.root))) return 0;
  const t0 = Date.now();
  let changed = 0;
  const fix = async (path: string): Promise<void> => {
    const want = aclFor(auth, path);
    const have = await zk.getAcl(path);
    if (have && !sameAcl(have, want)) {
      await zk.setAcl(path, want);
      changed++;
    }
  };
  const visit = async (path: string): Promise<void> => {
    const children = await zk.children(path);
    for (let i = 0; i < children.length; i += BATCH) await Promise.all(children.slice(i, i + BATCH).map((c) => visit(`${path}/${c}`)));
    if (path !== auth.root) await fix(path);
  };
  await visit(auth.root);
  await fix(auth.root);
  log?.info({ changed, ms: Date.now() - t0 }, "znodes given their ACLs");
  return changed;
}
