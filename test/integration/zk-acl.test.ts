import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startZooKeeper, zookeeperInstalled, type ZooKeeperServer } from "../../src/cell/zookeeper-server.js";
import { migrateAcls } from "../../src/coord/acl-migration.js";
import { ZK, isZkCode, ZkSession, type SessionCredentials } from "../../src/coord/zk.js";
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

/**
 * A process that opens a session (or resumes one), creates or reads a znode, says what it got, and is
 * SIGKILLed: it leaves the session to whoever resumes it next.
 */
async function inChild(o: { connect: string; auth?: ZkAuth; resume?: SessionCredentials; create?: string; read?: string }): Promise<{ sessionId: string; credentials: SessionCredentials; read?: string }> {
  const script = `
    const { ZkSession, isZkCode, ZK } = await import(process.argv[1]);
    const o = JSON.parse(process.argv[2]);
    const s = await ZkSession.connect({ connect: o.connect, sessionTimeoutMs: 4000, connectTimeoutMs: 30000, ...(o.resume ? { resume: o.resume } : {}), ...(o.auth ? { auth: o.auth } : {}) });
    let read;
    if (o.create) { await s.ensurePath(o.create.slice(0, o.create.lastIndexOf("/"))); await s.createIfAbsent(o.create, "{}"); }
    if (o.read) read = await s.get(o.read).then(() => "ok", (e) => (isZkCode(e, ZK.NOAUTH) ? "NOAUTH" : String(e)));
    process.stdout.write(JSON.stringify({ sessionId: s.sessionId, credentials: s.credentials, read }) + "\\n");
    setInterval(() => {}, 60000);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script, new URL("../../src/coord/zk.js", import.meta.url).href, JSON.stringify(o)], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
    return JSON.parse(line) as { sessionId: string; credentials: SessionCredentials; read?: string };
  } finally {
    child.kill("SIGKILL");
    if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
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
    // Each earlier holder of the session is a process that dies, as a restarted daemon's predecessor does: two live
    // holders in one process would take the session from each other over and over (each resumption moves it).
    const created = await inChild({ connect: zk.connectString, auth, create: "/acl/jobs/resumed" });
    const resume = created.credentials;
    const bare = await inChild({ connect: zk.connectString, resume, read: "/acl/jobs/resumed" });
    assert.equal(bare.sessionId, created.sessionId);
    assert.equal(bare.read, "NOAUTH", "the same session on a handle without the credential");
    const again = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 4000, resume, auth });
    sessions.push(again);
    assert.equal(again.sessionId, created.sessionId);
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
