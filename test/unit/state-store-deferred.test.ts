import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { TaskInstance } from "../../src/common/types.js";
import { zpaths } from "../../src/coord/paths.js";
import { ZkStateStore } from "../../src/coord/state-store.js";
import { chunkOf } from "../../src/coord/store/chunks.js";
import type { ZkSession } from "../../src/coord/zk.js";
import { jobRecord as job, taskRecord as task, zookeeperForSuite, type SuiteZooKeeper } from "../harness/store-records.js";
import { until } from "../harness/wait.js";

/*
 * Deferred observations against a real ZooKeeper: what an agent reports of a
 * live task (running, ports, health) is in the primary's copy at once and in
 * ZooKeeper with its chunk's next write. These are the rules that keep that
 * safe: nothing older lands over it, a conflict gives the copy back to
 * ZooKeeper, and a flush writes only what waited long enough.
 */

let zk: SuiteZooKeeper;

async function primaryStore(root: string): Promise<ZkStateStore> {
  const st = new ZkStateStore(await zk.connect(), root);
  await st.start();
  await st.becomeAuthoritative();
  return st;
}

async function backupStore(root: string): Promise<ZkStateStore> {
  const st = new ZkStateStore(await zk.connect(), root);
  await st.start();
  return st;
}

/** The record of task `index` as its chunk znode holds it now. */
async function stored(s: ZkSession, root: string, jobId: string, index: number): Promise<TaskInstance | undefined> {
  const r = await s.getIfExists(zpaths(root).taskChunk(jobId, chunkOf(index)));
  return r ? (JSON.parse(r.data.toString()) as TaskInstance[]).find((t) => t.index === index) : undefined;
}

const dispatched = (jobId: string, index: number) => task(jobId, index, { state: "dispatched", nodeId: "n1", attempt: 1, dispatchedAt: 2 });
const running = (jobId: string, index: number, startedAt = 3) => task(jobId, index, { state: "running", nodeId: "n1", attempt: 1, dispatchedAt: 2, startedAt });

describe("deferred task observations", () => {
  zk = zookeeperForSuite("store-deferred");

  test("an observation is in the primary's copy at once, and in ZooKeeper and the backups once its chunk is flushed", async () => {
    const root = "/deferred-flush";
    const a = await primaryStore(root);
    await a.createJob(job("web", 2));
    await Promise.all([0, 1].map((i) => a.putTask(dispatched("web", i))));
    const b = await backupStore(root);
    const s = await zk.connect();

    a.deferTask(running("web", 0), 1000);
    assert.equal(a.task("web", 0)?.state, "running", "the primary reads it at once");
    assert.equal(a.deferredChunks, 1);
    assert.equal((await stored(s, root, "web", 0))?.state, "dispatched", "ZooKeeper does not have it yet");

    assert.deepEqual(await a.flushDeferred(999), { chunks: 0, failed: 0 }, "an observation younger than the flush's bound waits");
    assert.deepEqual(await a.flushDeferred(1000), { chunks: 1, failed: 0 });
    assert.equal(a.deferredChunks, 0);
    assert.equal((await stored(s, root, "web", 0))?.state, "running");
    await until("the backup's copy has it", () => b.task("web", 0)?.state === "running");
    assert.equal(b.task("web", 1)?.state, "dispatched");
  });

  test("a chunk's next write carries the observations deferred in it, so no flush is needed", async () => {
    const root = "/deferred-carried";
    const a = await primaryStore(root);
    await a.createJob(job("web", 2));
    await Promise.all([0, 1].map((i) => a.putTask(dispatched("web", i))));
    const s = await zk.connect();

    a.deferTask(running("web", 0), 1000);
    await a.putTask(task("web", 1, { state: "completed", nodeId: "n1", attempt: 1, finishedAt: 4 }));
    assert.equal((await stored(s, root, "web", 0))?.state, "running", "the write of index 1 carried index 0's observation");
    assert.equal(a.deferredChunks, 0);
    assert.deepEqual(await a.flushDeferred(Number.MAX_SAFE_INTEGER), { chunks: 0, failed: 0 });
  });

  test("an observation made while its chunk is being written goes in the next write: the write under way never lands an older record over it", async () => {
    const root = "/deferred-in-flight";
    const a = await primaryStore(root);
    await a.createJob(job("web", 1));
    await a.putTask(dispatched("web", 0));
    const s = await zk.connect();

    const older = a.putTask(task("web", 0, { ...dispatched("web", 0), ports: { http: 8080 } }));
    a.deferTask(running("web", 0), 1000);
    await older;
    await until("the newer record is written", async () => (await stored(s, root, "web", 0))?.state === "running");
    assert.equal(a.task("web", 0)?.state, "running", "the copy keeps the newer record");
    assert.equal(a.deferredChunks, 0, "it went as a write of its own, not deferred");
  });

  test("a conflict drops the chunk's deferred observations: the copy is ZooKeeper's again", async () => {
    const root = "/deferred-conflict";
    const a = await primaryStore(root);
    await a.createJob(job("web", 2));
    await Promise.all([0, 1].map((i) => a.putTask(dispatched("web", i))));
    const other = await primaryStore(root);
    await other.putTask(task("web", 1, { ...dispatched("web", 1), nodeId: "n2" }));

    a.deferTask(running("web", 0), 1000);
    assert.deepEqual(await a.flushDeferred(1000), { chunks: 1, failed: 1 });
    assert.equal(a.deferredChunks, 0);
    assert.equal(a.task("web", 0)?.state, "dispatched", "the observation is gone with the stale copy (the agent reports it again)");
    assert.equal(a.task("web", 1)?.nodeId, "n2", "the copy holds the other writer's record");
    await a.putTask(running("web", 0));
    assert.equal(a.task("web", 0)?.state, "running", "after the reload a write of the chunk succeeds again");
  });
});
