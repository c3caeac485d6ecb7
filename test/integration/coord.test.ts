import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startZooKeeper, type ZooKeeperServer } from "../../src/cell/zookeeper-server.js";
import { CoordinationError } from "../../src/common/errors.js";
import { Election, type LeaderInfo } from "../../src/coord/election.js";
import { ZkStateStore } from "../../src/coord/state-store.js";
import { ZK, ZkSession } from "../../src/coord/zk.js";

/** Awaits with a deadline, so a missing event fails the test instead of hanging the suite. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))) ]).finally(() => clearTimeout(t));
}

describe("coordination layer on a real ZooKeeper", () => {
  let zk: ZooKeeperServer;
  const dir = mkdtempSync(join(tmpdir(), "torca-coord-"));
  const sessions: ZkSession[] = [];
  const open = async () => {
    const s = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 2000 });
    sessions.push(s);
    return s;
  };
  before(async () => {
    zk = await startZooKeeper({ dataDir: join(dir, "zk"), tickTimeMs: 1000 });
  });
  after(async () => {
    for (const s of sessions) s.close();
    await zk?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("versioned set is a compare-and-set: a stale version is refused", async () => {
    const s = await open();
    await s.ensurePath("/t/cas");
    const st = await s.set("/t/cas", "a", 0);
    assert.equal(st.version, 1);
    await assert.rejects(s.set("/t/cas", "b", 0), (e: unknown) => e instanceof CoordinationError && e.zkCode === ZK.BADVERSION);
    assert.equal((await s.get("/t/cas")).data.toString(), "a");
  });

  test("ephemeral nodes vanish with their session, and watchers hear it", async () => {
    const a = await open();
    const b = await open();
    await a.ensurePath("/t/eph");
    await a.create("/t/eph/node", "x", "ephemeral");
    let heard!: (ev: string) => void;
    const gone = new Promise<string>((r) => (heard = r));
    assert.ok(await b.exists("/t/eph/node", (ev) => heard(ev)), "the watch is armed on the live node before its owner goes");
    a.close();
    assert.equal(await within(gone, 10_000, "the deletion watch"), "deleted");
    assert.equal(await b.exists("/t/eph/node"), undefined);
  });

  test("election: one primary at a time, the next takes over when it goes, and the epoch rises", async () => {
    const s1 = await open();
    const s2 = await open();
    const e1 = new Election(s1, "/t/cell", { id: "m1", url: "http://127.0.0.1:1" });
    const e2 = new Election(s2, "/t/cell", { id: "m2", url: "http://127.0.0.1:2" });
    const first = new Promise<LeaderInfo>((r) => e1.once("elected", r));
    await e1.start();
    await e2.start();
    const l1 = await within(first, 10_000, "the first election");
    assert.equal(l1.id, "m1");
    assert.equal(e2.isPrimary, false);
    const second = new Promise<LeaderInfo>((r) => e2.once("elected", r));
    const deposed = new Promise<void>((r) => e1.once("deposed", () => r()));
    s1.close();
    await within(deposed, 10_000, "deposition");
    const l2 = await within(second, 10_000, "the takeover");
    assert.equal(l2.id, "m2");
    assert.ok(l2.epoch > l1.epoch);
    assert.equal(JSON.parse((await s2.get("/t/cell/leader")).data.toString()).id, "m2");
  });

  test("a job whose creation was cut short (job node written, tasks node not) still gets its tasks written", async () => {
    // What a primary killed between the two creates of createJob leaves behind.
    const s = await open();
    await s.ensurePath("/t/cut/jobs");
    const job = { id: "cut", spec: {}, source: "", status: "pending", desired: "run", submittedAt: 1, updatedAt: 1 };
    await s.create("/t/cut/jobs/cut", JSON.stringify(job));
    const store = new ZkStateStore(s, "/t/cut");
    await store.start();
    await store.becomeAuthoritative();
    assert.ok(store.jobs.has("cut"));
    const task = { id: "cut/0", jobId: "cut", index: 0, run: 0, desired: "run", state: "pending", attempt: 0, restartsOnNode: 0, migrations: 0, createdAt: 1, updatedAt: 1, events: [] } as const;
    await store.putTask({ ...task, events: [] });
    assert.equal(JSON.parse((await s.get("/t/cut/jobs/cut/tasks/0")).data.toString()).id, "cut/0");
    assert.equal(store.task("cut", 0)?.id, "cut/0");
  });

  test("operations on a closed session fail instead of silently using a new one", async () => {
    const s = await open();
    s.close();
    assert.equal(s.isAlive, false);
    await assert.rejects(s.get("/t"), CoordinationError);
  });
});
