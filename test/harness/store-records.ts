/**
 * For state store tests against a real ZooKeeper: one server per describe
 * block (started before it, stopped after it with every session opened
 * through it), and job and task records as a primary writes them.
 */
import { after, before } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startZooKeeper, type ZooKeeperServer } from "../../src/cell/zookeeper-server.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { ZkSession, type ZkOptions } from "../../src/coord/zk.js";

export interface SuiteZooKeeper {
  /** A new session on the suite's server; closed after the suite. */
  connect(opts?: Partial<Omit<ZkOptions, "connect">>): Promise<ZkSession>;
}

/** Call inside `describe`: registers the hooks that start and stop the server. */
export function zookeeperForSuite(name: string): SuiteZooKeeper {
  let scratch: string | undefined;
  let zk: ZooKeeperServer | undefined;
  const sessions: ZkSession[] = [];
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), `torca-${name}-`));
    zk = await startZooKeeper({ dataDir: join(scratch, "zk"), tickTimeMs: 1000 });
  });
  after(async () => {
    for (const s of sessions) s.close();
    await zk?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });
  return {
    async connect(opts = {}) {
      if (!zk) throw new Error("the suite's ZooKeeper is not started (connect from a test or hook)");
      const s = await ZkSession.connect({ sessionTimeoutMs: 4000, ...opts, connect: zk.connectString });
      sessions.push(s);
      return s;
    },
  };
}

export function jobRecord(id: string, instances: number, type: "batch" | "service" = "batch"): Job {
  const spec = parseTaskFile(`name: ${id}\ntype: ${type}\ninstances: ${instances}\ncommand: [/bin/true]\n`);
  return { id, spec, source: "", status: "pending", desired: "run", submittedAt: 1, updatedAt: 1 };
}

export function taskRecord(jobId: string, index: number, extra: Partial<TaskInstance> = {}): TaskInstance {
  return { id: `${jobId}/${index}`, jobId, index, run: 0, desired: "run", state: "pending", attempt: 0, restartsOnNode: 0, migrations: 0, createdAt: 1, updatedAt: 1, events: [{ at: 1, type: "created", message: "created" }], ...extra };
}
