import { fourLetterWord } from "../../src/cell/zookeeper-server.js";
import { zpaths } from "../../src/coord/paths.js";
import { ZkSession } from "../../src/coord/zk.js";
import type { ZkAuth } from "../../src/coord/zk/acl.js";

/** ZooKeeper's own figures (`mntr`): znodes in the whole tree and the approximate data size. */
export async function zookeeperFigures(port: number): Promise<{ znodes: number; dataBytes: number }> {
  const mntr = await fourLetterWord("127.0.0.1", port, "mntr", 5000);
  const n = (key: string) => Number(new RegExp(`^zk_${key}\\s+(\\d+)`, "m").exec(mntr)?.[1] ?? NaN);
  return { znodes: n("znode_count"), dataBytes: n("approximate_data_size") };
}

/** What ZooKeeper itself holds under the cell's jobs: job ids and the task znodes (chunks of records) under them (read with the cell's credential: the znodes have ACLs). */
export async function jobsInZooKeeper(connect: string, auth: ZkAuth | undefined, root = "/torca"): Promise<{ jobs: string[]; tasks: number }> {
  const zk = await ZkSession.connect({ connect, sessionTimeoutMs: 4000, ...(auth ? { auth } : {}) });
  try {
    const p = zpaths(root);
    const jobs = (await zk.children(p.jobs)).map((j) => decodeURIComponent(j));
    let tasks = 0;
    for (const j of jobs) tasks += (await zk.exists(p.tasks(j))) ? (await zk.children(p.tasks(j))).length : 0;
    return { jobs, tasks };
  } finally {
    zk.close();
  }
}

/** Znodes under each child of `root` (whole subtrees), to say where a count that did not come back down went. */
export async function znodesByBranch(connect: string, auth: ZkAuth | undefined, root = "/torca"): Promise<Record<string, number>> {
  const zk = await ZkSession.connect({ connect, sessionTimeoutMs: 4000, ...(auth ? { auth } : {}) });
  const count = async (path: string): Promise<number> => {
    let n = 1;
    for (const c of await zk.children(path)) n += await count(`${path}/${c}`);
    return n;
  };
  try {
    const out: Record<string, number> = {};
    for (const c of await zk.children(root)) out[c] = await count(`${root}/${c}`);
    return out;
  } finally {
    zk.close();
  }
}
