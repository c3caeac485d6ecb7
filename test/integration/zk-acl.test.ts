import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startZooKeeper, zookeeperInstalled, type ZooKeeperServer } from "../../src/cell/zookeeper-server.js";
import { migrateAcls } from "../../src/coord/acl-migration.js";
import { ZK, isZkCode, ZkSession } from "../../src/coord/zk.js";
import { PERM, type ZkAuth } from "../../src/coord/zk/acl.js";
import { namingPaths } from "../../naming/layout.js";
import { parseServiceName } from "../../naming/names.js";
import { registerEndpoint } from "../../naming/registration.js";
import { createResolver } from "../../naming/resolver.js";
import { startTestCell, type TestCell } from "../harness/cell.js";

/*
 * ZooKeeper ACLs against a real server: with Torca's credential the naming
 * subtree is world-readable and nothing else is readable or writable by
 * anyone else; a cell created before ACLs gets them from the migration; and a
 * whole local cell's daemons run with its generated credential.
 */

const skip = zookeeperInstalled() ? false : "ZooKeeper is not installed";
const scratch = await mkdtemp(join(tmpdir(), "torca-acl-"));
let zk: ZooKeeperServer;
const sessions: ZkSession[] = [];

async function session(auth?: ZkAuth, connect = zk.connectString): Promise<ZkSession> {
  // What is under test is the ACLs, not how fast a client connects: a generous limit (each attempt is a fresh handle).
  const s = await ZkSession.connect({ connect, sessionTimeoutMs: 4000, connectTimeoutMs: 30_000, ...(auth ? { auth } : {}) });
  sessions.push(s);
  return s;
}

/** Resolves to the ZooKeeper code the operation failed with, or "ok". */
async function outcome(op: Promise<unknown>): Promise<number | "ok"> {
  try {
    await op;
    return "ok";
  } catch (e) {
    if (isZkCode(e, ZK.NOAUTH)) return ZK.NOAUTH;
    throw e;
  }
}

function endpoint(task: string, port: number) {
  return { host: "127.0.0.1", port, ports: { http: port }, task, node: "agent-1", job: task.split("/")[0]!, attempt: 1, registeredAt: Date.now() };
}

before(async () => {
  if (skip) return;
  zk = await startZooKeeper({ dataDir: join(scratch, "zk"), tickTimeMs: 1000 });
});
after(async () => {
  for (const s of sessions) s.close();
  await zk?.stop();
  await rm(scratch, { recursive: true, force: true });
});

describe("ZooKeeper ACLs", { skip }, () => {
  const auth: ZkAuth = { credential: "torca:s3cret-for-tests", root: "/acl" };
  const job = "/acl/jobs/payroll";
  const name = parseServiceName("web.frontend");

  test("anyone reads naming endpoints; jobs are Torca's alone; nothing is writable without the credential", async () => {
    const torca = await session(auth);
    await torca.ensurePath("/acl/jobs");
    await torca.create(job, JSON.stringify({ env: { DB_PASSWORD: "hunter2" } }));
    assert.equal(await registerEndpoint(torca, "/acl", name, endpoint("web/0", 31001)), "created");
    const ep = namingPaths("/acl").endpoint(name, "web/0");

    const anonymous = await session();
    const stranger = await session({ credential: "torca:wrong-password", root: "/acl" });
    for (const s of [anonymous, stranger]) {
      assert.equal(JSON.parse(String((await s.get(ep)).data)).port, 31001, "a naming endpoint is world-readable");
      assert.deepEqual(await s.children(namingPaths("/acl").service(name)), ["web%2F0"]);
      assert.equal(await outcome(s.get(job)), ZK.NOAUTH, "a job is not readable");
      assert.equal(await outcome(s.children("/acl/jobs")), ZK.NOAUTH, "job names are not listable");
      assert.equal(await outcome(s.children("/acl")), ZK.NOAUTH);
      assert.equal(await outcome(s.create("/acl/intruder")), ZK.NOAUTH, "nothing is created under the root");
      assert.equal(await outcome(s.create(`${namingPaths("/acl").service(name)}/fake`, "{}", "ephemeral")), ZK.NOAUTH, "no endpoint is forged");
      assert.equal(await outcome(s.set(ep, "{}")), ZK.NOAUTH, "no endpoint is rewritten");
      assert.equal(await outcome(s.delete(ep)), ZK.NOAUTH, "no endpoint is removed");
      assert.equal(await outcome(s.set(job, "{}")), ZK.NOAUTH);
      assert.equal(await outcome(s.setAcl(job, [{ perm: PERM.ALL, scheme: "world", id: "anyone" }])), ZK.NOAUTH, "no ACL is opened");
    }
    assert.match(String((await torca.get(job)).data), /hunter2/, "Torca's credential reads the job");

    const resolver = await createResolver({ zookeeper: zk.connectString, root: "/acl", sessionTimeoutMs: 4000 });
    try {
      assert.deepEqual((await resolver.resolve("web.frontend")).map((e) => e.port), [31001], "the resolver needs no credential");
    } finally {
      resolver.close();
    }
  });

  test("authentication belongs to the handle: a session resumed on a new handle is given the credential again", async () => {
    const first = await session(auth);
    await first.ensurePath("/acl/jobs");
    await first.createIfAbsent("/acl/jobs/resumed", "{}");
    const resume = first.credentials;
    const bare = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 4000, resume });
    sessions.push(bare);
    assert.equal(await outcome(bare.get("/acl/jobs/resumed")), ZK.NOAUTH, "the same session on a handle without the credential");
    const again = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 4000, resume, auth });
    sessions.push(again);
    assert.equal(again.sessionId, first.sessionId);
    assert.equal(String((await again.get("/acl/jobs/resumed")).data), "{}");
  });

  test("a cell created before ACLs gets them at the migration; a second run, or a root that does not exist yet, finds nothing to do", async () => {
    const old = await session();
    const legacy: ZkAuth = { credential: auth.credential, root: "/legacy" };
    await old.ensurePath("/legacy/jobs");
    await old.create("/legacy/jobs/old", "{}");
    await old.ensurePath("/legacy/naming/default/db");
    const torca = await session(legacy);
    assert.equal(await migrateAcls(torca, { ...legacy, root: "/not-yet" }), 0);
    assert.equal(await migrateAcls(torca, legacy), 6);
    assert.equal(await outcome(old.get("/legacy/jobs/old")), ZK.NOAUTH);
    assert.equal(await outcome(old.create("/legacy/naming/default/db/x")), ZK.NOAUTH);
    assert.deepEqual(await old.children("/legacy/naming/default"), ["db"]);
    assert.equal(await migrateAcls(torca, legacy), 0);
  });
});

describe("a local cell's ZooKeeper credential", { skip }, () => {
  let c: TestCell;
  before(async () => {
    c = await startTestCell({ managers: 1, agents: 1 });
  });
  after(async () => {
    await c?.close();
  });

  test("its daemons run a job; the job's znode is closed to a client without the credential", async () => {
    const { id } = await c.submit("name: acl-job\ntype: batch\ncommand: [\"true\"]\n");
    assert.equal((await c.waitJob(id, (j) => j.status === "complete" || j.status === "failed", 60_000, "finished")).status, "complete");
    const anonymous = await session(undefined, c.cell.zookeeperConnect);
    assert.equal(await outcome(anonymous.get(`/torca/jobs/${encodeURIComponent(id)}`)), ZK.NOAUTH);
    const torca = await session(c.cell.zookeeperAuth, c.cell.zookeeperConnect);
    assert.ok(await torca.getIfExists(`/torca/jobs/${encodeURIComponent(id)}`));
  });
});
