import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startZooKeeper, type ZooKeeperServer } from "../../src/cell/zookeeper-server.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { ZkStateStore } from "../../src/coord/state-store.js";
import { ZkSession } from "../../src/coord/zk.js";
import { TaskWriter } from "../../src/manager/primary/writer.js";

/*
 * ZooKeeper writes per task: one batch job of 1,000 instances taken through
 * its whole life the way the primary writes it (the submission's records, a
 * placement round's dispatches, then agents' reports of running and of exits
 * in batches of 100), counting every create, set and delete the primary's
 * session makes. Task records are kept in chunk znodes committed in groups,
 * so this costs a small fraction of a write per task.
 */

const ROOT = "/store-writes";
const INSTANCES = 1000;
const REPORT_BATCH = 100;
const WRITES = new Set(["create", "set", "delete"]);
const scratch = await mkdtemp(join(tmpdir(), "torca-store-writes-"));
let zk: ZooKeeperServer;
const sessions: ZkSession[] = [];

function job(id: string): Job {
  const spec = parseTaskFile(`name: ${id}\ntype: batch\ninstances: ${INSTANCES}\ncommand: [/bin/true]\n`);
  return { id, spec, source: "", status: "pending", desired: "run", submittedAt: 1, updatedAt: 1 };
}

function task(jobId: string, index: number, extra: Partial<TaskInstance> = {}): TaskInstance {
  return { id: `${jobId}/${index}`, jobId, index, run: 0, desired: "run", state: "pending", attempt: 0, restartsOnNode: 0, migrations: 0, createdAt: 1, updatedAt: 1, events: [{ at: 1, type: "created", message: "created" }], ...extra };
}

describe("ZooKeeper writes per task", () => {
  before(async () => {
    zk = await startZooKeeper({ dataDir: join(scratch, "zk"), tickTimeMs: 1000 });
  });
  after(async () => {
    for (const s of sessions) s.close();
    await zk?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  test("a 1,000-task job placed and run costs well under one write per task", async () => {
    let writes = 0;
    const s = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 4000, observe: (op, _ms, ok) => void (ok && WRITES.has(op) && writes++) });
    sessions.push(s);
    const store = new ZkStateStore(s, ROOT);
    await store.start();
    await store.becomeAuthoritative();
    const writer = new TaskWriter(store, () => false);
    const id = "thousand";
    await store.createJob(job(id));
    const before = writes;

    const indexes = [...Array(INSTANCES).keys()];
    await writer.put(indexes.map((i) => task(id, i)));
    const sent: string[] = [];
    await writer.putThenSend(
      indexes.map((i) => task(id, i, { state: "dispatched", nodeId: `n${i % 10}`, attempt: 1, dispatchedAt: 2 })),
      (t) => sent.push(t.id),
    );
    assert.equal(sent.length, INSTANCES, "every dispatch is handed on once durable");
    for (const state of ["running", "completed"] as const) {
      for (let i = 0; i < INSTANCES; i += REPORT_BATCH) {
        await writer.put(indexes.slice(i, i + REPORT_BATCH).map((k) => task(id, k, { state, nodeId: `n${k % 10}`, attempt: 1, dispatchedAt: 2, startedAt: 3, ...(state === "completed" ? { finishedAt: 4 } : {}) })));
      }
    }
    const perTask = (writes - before) / INSTANCES;
    console.log(`zk writes per task (1,000-task job placed and run): ${perTask.toFixed(3)} (${writes - before} writes)`);
    assert.equal(store.tasksOf(id).filter((t) => t.state === "completed").length, INSTANCES);
    assert.ok(perTask < 0.25, `${perTask} writes per task`);
  });
});
