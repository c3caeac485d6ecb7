import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConflictError } from "../../src/common/errors.js";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { zpaths } from "../../src/coord/paths.js";
import { ZkStateStore } from "../../src/coord/state-store.js";
import { fitRecord, MAX_RECORD_BYTES, TASKS_PER_CHUNK } from "../../src/coord/store/chunks.js";
import type { ZkSession } from "../../src/coord/zk.js";
import { jobRecord as job, taskRecord as task, zookeeperForSuite, type SuiteZooKeeper } from "../harness/store-records.js";
import { until } from "../harness/wait.js";

/*
 * The chunk layout of task records against a real ZooKeeper: the upgrade from
 * one znode per task (including an upgrade cut short by a crash), conflicts
 * between two writers, the size bound of a record, and how long a backup's
 * cold load of 100,000 tasks takes.
 */

let zk: SuiteZooKeeper;

const session = (): Promise<ZkSession> => zk.connect();

async function store(root: string): Promise<ZkStateStore> {
  const st = new ZkStateStore(await session(), root);
  await st.start();
  return st;
}


/** What a manager before chunks left in ZooKeeper: the job node and one znode per task record. */
async function writeOldLayout(s: ZkSession, root: string, j: Job, records: TaskInstance[]): Promise<void> {
  const p = zpaths(root);
  await s.ensurePath(p.jobs);
  await s.create(p.job(j.id), JSON.stringify(j));
  await s.create(p.tasks(j.id));
  await Promise.all(records.map((t) => s.create(p.legacyTask(j.id, t.index), JSON.stringify(t))));
}

async function tasksChildren(s: ZkSession, root: string, jobId: string): Promise<string[]> {
  return (await s.children(zpaths(root).tasks(jobId))).sort();
}

/** The records of a job as the chunk znodes hold them, by index, each counted once. */
async function recordsInChunks(s: ZkSession, root: string, jobId: string): Promise<Map<number, TaskInstance>> {
  const out = new Map<number, TaskInstance>();
  for (const name of await tasksChildren(s, root, jobId)) {
    if (!name.startsWith("c")) continue;
    for (const t of JSON.parse((await s.get(`${zpaths(root).tasks(jobId)}/${name}`)).data.toString()) as TaskInstance[]) {
      assert.ok(!out.has(t.index), `${t.id} stored twice`);
      out.set(t.index, t);
    }
  }
  return out;
}

const states = (st: ZkStateStore, jobId: string) => st.tasksOf(jobId).map((t) => `${t.index}:${t.state}`);

describe("task records in chunk znodes", () => {
  zk = zookeeperForSuite("store-chunks");

  test("a cell stored one znode per task is read as it is, then moved into chunks by the primary: every record there once", async () => {
    const root = "/upgrade";
    const s = await session();
    const j = job("old", 150);
    const records = Array.from({ length: 150 }, (_, i) => task("old", i, i % 2 ? { state: "running", nodeId: "n1", attempt: 1 } : {}));
    await writeOldLayout(s, root, j, records);

    const backup = await store(root);
    assert.equal(backup.taskCount("old"), 150, "a backup reads the old layout");
    const dropped: string[] = [];
    backup.on("task", (t, id) => void (t ? undefined : dropped.push(id)));
    const writer = await store(root);
    assert.deepEqual(states(writer, "old"), states(backup, "old"));
    await writer.becomeAuthoritative();

    await until("the per-index znodes to be deleted", async () => (await tasksChildren(s, root, "old")).every((n) => n.startsWith("c")));
    assert.deepEqual(await tasksChildren(s, root, "old"), ["c0", "c1", "c2"]);
    const stored = await recordsInChunks(s, root, "old");
    assert.deepEqual([...stored.keys()].sort((a, b) => a - b), [...Array(150).keys()]);
    assert.deepEqual(stored.get(7), records[7], "records move unchanged");
    assert.deepEqual(states(writer, "old"), records.map((t) => `${t.index}:${t.state}`));

    // The backup followed the move without losing or doubling a record, and follows writes to the chunks.
    await writer.putTask(task("old", 4, { state: "running", nodeId: "n2", attempt: 1 }));
    await until("the backup to see the write", () => backup.task("old", 4)?.state === "running");
    assert.equal(backup.taskCount("old"), 150);
    assert.deepEqual(states(backup, "old"), states(writer, "old"));
    assert.deepEqual(ids(backup.tasksOnNode("n2")), ["old/4"]);
    assert.deepEqual(dropped, [], "no record went missing from the backup's copy while it moved");
  });

  test("an upgrade cut short between writing a chunk and deleting its per-index znodes: the chunk wins, nothing is lost or doubled", async () => {
    const root = "/cut-short";
    const s = await session();
    const j = job("half", 100);
    await writeOldLayout(s, root, j, Array.from({ length: 100 }, (_, i) => task("half", i)));
    // The chunk of 0..63 was written (with newer records than the per-index znodes), then the primary died.
    const newer = Array.from({ length: TASKS_PER_CHUNK }, (_, i) => task("half", i, { state: "completed", finishedAt: 5 }));
    await s.create(zpaths(root).taskChunk("half", 0), JSON.stringify(newer));

    const backup = await store(root);
    assert.equal(backup.taskCount("half"), 100);
    assert.equal(backup.task("half", 10)?.state, "completed", "the chunk wins over the per-index znode");
    assert.equal(backup.task("half", 70)?.state, "pending", "a range without a chunk is read from per-index znodes");

    const writer = await store(root);
    await writer.becomeAuthoritative();
    await until("the per-index znodes to be deleted", async () => (await tasksChildren(s, root, "half")).every((n) => n.startsWith("c")));
    const stored = await recordsInChunks(s, root, "half");
    assert.equal(stored.size, 100);
    assert.equal(stored.get(10)?.state, "completed");
    assert.equal(stored.get(70)?.state, "pending");
    await until("the backup to follow", () => backup.taskCount("half") === 100 && backup.task("half", 10)?.state === "completed");
    assert.deepEqual(states(backup, "half"), states(writer, "half"));
  });

  test("a write against a chunk another writer changed is a ConflictError, and the copy is reloaded", async () => {
    const root = "/conflict";
    const a = await store(root);
    await a.becomeAuthoritative();
    await a.createJob(job("web", 3));
    await Promise.all([0, 1, 2].map((i) => a.putTask(task("web", i))));
    const b = await store(root);
    await b.becomeAuthoritative();
    await b.putTask(task("web", 1, { state: "dispatched", nodeId: "n1", attempt: 1 }));

    const both = [a.putTask(task("web", 0, { state: "dispatched", nodeId: "n9", attempt: 1 })), a.putTask(task("web", 2, { state: "dispatched", nodeId: "n9", attempt: 1 }))];
    for (const r of await Promise.allSettled(both)) assert.ok(r.status === "rejected" && r.reason instanceof ConflictError, "every write that went with the stale chunk fails");
    assert.equal(a.task("web", 1)?.state, "dispatched", "the copy now holds the other writer's record");
    assert.equal(a.task("web", 0)?.state, "pending", "a failed write leaves the copy as stored");
    assert.deepEqual(ids(a.tasksOnNode("n9")), []);
  });

  test("a record with oversized texts is stored trimmed to its bound, newest event kept", () => {
    const long = "x".repeat(5000);
    const t = task("big", 0, { reason: long, events: Array.from({ length: 30 }, (_, i) => ({ at: i, type: "failed", message: `${i} ${long}` })) });
    const fitted = fitRecord(t);
    assert.ok(Buffer.byteLength(JSON.stringify(fitted)) <= MAX_RECORD_BYTES);
    assert.equal(fitted.events.at(-1)?.at, 29, "the newest event is kept");
    assert.ok(fitted.reason && fitted.reason.length < 300);
    const small = task("big", 1);
    assert.equal(fitRecord(small), small, "a record within the bound is stored as it is");
  });

  test("a backup's cold load of 100,000 tasks (100 jobs × 1,000) takes at most 5 s", async () => {
    const root = "/cold";
    const writer = await store(root);
    await writer.becomeAuthoritative();
    const JOBS = 100;
    const PER_JOB = 1000;
    for (let j = 0; j < JOBS; j++) {
      const id = `job-${j}`;
      await writer.createJob(job(id, PER_JOB));
      await Promise.all(
        Array.from({ length: PER_JOB }, (_, i) =>
          writer.putTask(
            task(id, i, {
              state: "running",
              nodeId: `node-${(j * PER_JOB + i) % 10000}`,
              attempt: 1,
              dispatchedAt: 2,
              startedAt: 3,
              ports: { http: 20000 + i },
              events: [
                { at: 1, type: "created", message: "created" },
                { at: 2, type: "dispatched", message: `dispatched to node-${i % 10000} (attempt 1)` },
                { at: 3, type: "running", message: "running" },
              ],
            }),
          ),
        ),
      );
    }
    const t0 = performance.now();
    const backup = await store(root);
    const seconds = (performance.now() - t0) / 1000;
    let count = 0;
    for (let j = 0; j < JOBS; j++) count += backup.taskCount(`job-${j}`);
    console.log(`backup cold load of ${count} tasks in ${Math.ceil((JOBS * PER_JOB) / TASKS_PER_CHUNK)} chunks: ${seconds.toFixed(2)} s`);
    assert.equal(count, JOBS * PER_JOB);
    assert.equal([...backup.tasksWhere("run", "running")].length, JOBS * PER_JOB);
    assert.ok(seconds <= 5, `cold load took ${seconds.toFixed(2)} s`);
  });
});

function ids(ts: Iterable<TaskInstance>): string[] {
  return [...ts].map((t) => t.id).sort();
}
