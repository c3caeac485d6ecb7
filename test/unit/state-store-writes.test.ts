import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Job } from "../../src/common/types.js";
import { ZkStateStore } from "../../src/coord/state-store.js";
import { jobRecord, taskRecord as task, zookeeperForSuite, type SuiteZooKeeper } from "../harness/store-records.js";
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
let zk: SuiteZooKeeper;

const job = (id: string): Job => jobRecord(id, INSTANCES);

describe("ZooKeeper writes per task", () => {
  zk = zookeeperForSuite("store-writes");

  test("a 1,000-task job placed and run costs well under one write per task", async () => {
    let writes = 0;
    const s = await zk.connect({ observe: (op, _ms, ok) => void (ok && WRITES.has(op) && writes++) });
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
