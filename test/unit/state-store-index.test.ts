import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { ZkStateStore } from "../../src/coord/state-store.js";
import { jobRecord, taskRecord, zookeeperForSuite, type SuiteZooKeeper } from "../harness/store-records.js";
import { until } from "../harness/wait.js";

/*
 * The state copy's indexes (by node, by desired/recorded state, task counts,
 * tallies by kind of state and revisions) against a real ZooKeeper: on the writer (putTask) and on a backup
 * copy that learns the same changes through its watches. The primary's tick
 * and each agent report read these instead of scanning every task, so they
 * must never drift from the tasks themselves.
 */

const ROOT = "/store-index";
let zk: SuiteZooKeeper;

async function store(): Promise<ZkStateStore> {
  const st = new ZkStateStore(await zk.connect(), ROOT);
  await st.start();
  return st;
}

const job = (id: string): Job => jobRecord(id, 3, "service");
const task = taskRecord;

const ids = (ts: Iterable<TaskInstance>) => [...ts].map((t) => t.id).sort();

/** What every index says, for comparing a writer's copy with a backup's. */
function indexes(s: ZkStateStore, nodes: string[]) {
  return {
    pending: ids(s.tasksWhere("run", "pending")),
    running: ids(s.tasksWhere("run", "running")),
    stopping: ids(s.tasksWhere("stop", "running")),
    nodes: [...s.nodesWithTasks()].sort(),
    onNode: Object.fromEntries(nodes.map((n) => [n, ids(s.tasksOnNode(n))])),
    count: s.taskCount("web"),
    tally: { ...s.taskTally("web") },
  };
}

describe("state store indexes", () => {
  zk = zookeeperForSuite("store-index");

  test("follow every task change on the writer and on a backup copy, and forget a deleted job's tasks", async () => {
    const writer = await store();
    await writer.becomeAuthoritative();
    const backup = await store();
    await writer.createJob(job("web"));
    for (let i = 0; i < 3; i++) await writer.putTask(task("web", i));
    assert.deepEqual(ids(writer.tasksWhere("run", "pending")), ["web/0", "web/1", "web/2"]);
    assert.equal(writer.taskCount("web"), 3);

    const r0 = writer.taskRevision("web");
    await writer.putTask(task("web", 0, { state: "dispatched", nodeId: "n1", attempt: 1 }));
    await writer.putTask(task("web", 1, { state: "running", nodeId: "n1", attempt: 1 }));
    await writer.putTask(task("web", 2, { state: "running", nodeId: "n2", attempt: 1, desired: "stop" }));
    assert.notEqual(writer.taskRevision("web"), r0, "a task change moves the job's revision");
    assert.deepEqual(indexes(writer, ["n1", "n2"]), { pending: [], running: ["web/1"], stopping: ["web/2"], nodes: ["n1", "n2"], onNode: { n1: ["web/0", "web/1"], n2: ["web/2"] }, count: 3, tally: { total: 3, byState: { dispatched: 1, running: 2 } } });

    // Moving a task off a node (lost, rescheduled) leaves that node's group.
    await writer.putTask(task("web", 2, { state: "pending", attempt: 1 }));
    const expected = { pending: ["web/2"], running: ["web/1"], stopping: [], nodes: ["n1"], onNode: { n1: ["web/0", "web/1"], n2: [] }, count: 3, tally: { total: 3, byState: { dispatched: 1, running: 1, pending: 1 } } };
    assert.deepEqual(indexes(writer, ["n1", "n2"]), expected);
    const r1 = writer.taskRevision("web");
    assert.equal(writer.taskRevision("web"), r1, "no change, same revision");

    await until("the backup's copy to catch up", () => backup.task("web", 2)?.state === "pending" && backup.task("web", 0)?.state === "dispatched");
    assert.deepEqual(indexes(backup, ["n1", "n2"]), expected, "the backup's indexes match the writer's");

    await writer.deleteJob("web");
    await until("the backup to forget the job", () => !backup.jobs.has("web"));
    for (const s of [writer, backup]) assert.deepEqual(indexes(s, ["n1", "n2"]), { pending: [], running: [], stopping: [], nodes: [], onNode: { n1: [], n2: [] }, count: 0, tally: { total: 0, byState: {} } });
  });
});
