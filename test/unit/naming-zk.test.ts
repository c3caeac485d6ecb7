import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentNaming } from "../../agent/naming/index.js";
import type { TaskRecord } from "../../agent/tasks/runner.js";
import { freePort } from "../../src/cell/ports.js";
import { startZooKeeper, type ZooKeeperServer } from "../../src/cell/zookeeper-server.js";
import { createLogger } from "../../src/common/logger.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import { ZkSession } from "../../src/coord/zk.js";
import { namingPaths, type EndpointRecord } from "../../naming/layout.js";
import { parseServiceName } from "../../naming/names.js";
import { deregisterEndpoint, ownedBy, registerEndpoint } from "../../naming/registration.js";
import { createResolver, Resolver, type Endpoint } from "../../naming/resolver.js";
import { until } from "../harness/wait.js";

/*
 * Resolver cache, registrar helpers and the agent's naming side against a
 * real ZooKeeper (tickTime 1000 so 2 s sessions are allowed).
 */

const ROOT = "/naming-unit";
const scratch = await mkdtemp(join(tmpdir(), "torca-naming-"));
const zkPort = await freePort();
let zk: ZooKeeperServer;
const sessions: ZkSession[] = [];
const resolvers: Resolver[] = [];
const servers: Server[] = [];
const log = createLogger("naming-test");

async function session(): Promise<ZkSession> {
  const s = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 4000 });
  sessions.push(s);
  return s;
}

async function resolver(extra: { loadTimeoutMs?: number } = {}): Promise<Resolver> {
  const r = await createResolver({ zookeeper: zk.connectString, root: ROOT, sessionTimeoutMs: 4000, ...extra });
  resolvers.push(r);
  return r;
}

function record(task: string, port: number, attempt = 1, node = "agent-1"): EndpointRecord {
  return { host: "127.0.0.1", port, ports: { http: port }, task, node, job: task.split("/")[0]!, attempt, registeredAt: Date.now() };
}

before(async () => {
  zk = await startZooKeeper({ dataDir: join(scratch, "zk"), port: zkPort, tickTimeMs: 1000 });
});
after(async () => {
  for (const r of resolvers) r.close();
  for (const s of sessions) s.close();
  for (const s of servers) s.close();
  await zk?.stop();
  await rm(scratch, { recursive: true, force: true });
});

describe("registration helpers", () => {
  test("create, unchanged, takeover by a newer attempt, yield to a newer one, owner-only delete, prune", async () => {
    const a = await session();
    const b = await session();
    const name = parseServiceName("reg.svc");
    const p = namingPaths(ROOT);
    assert.equal(await registerEndpoint(a, ROOT, name, record("reg/0", 30001, 1)), "created");
    assert.equal(await registerEndpoint(a, ROOT, name, record("reg/0", 30001, 1)), "unchanged");
    // Another machine with an older attempt must not steal it.
    assert.equal(await registerEndpoint(b, ROOT, name, record("reg/0", 30009, 0, "agent-2")), "yielded");
    // The same attempt on another node also yields (only the owner node may redo an attempt).
    assert.equal(await registerEndpoint(b, ROOT, name, record("reg/0", 30009, 1, "agent-2")), "yielded");
    assert.equal(await registerEndpoint(b, ROOT, name, record("reg/0", 30002, 2, "agent-2")), "took-over");
    const got = await a.get(p.endpoint(name, "reg/0"));
    assert.equal(JSON.parse(got.data.toString()).port, 30002);
    // a no longer owns it: its delete is a no-op.
    assert.equal(await deregisterEndpoint(a, ROOT, name, "reg/0"), false);
    assert.ok(await a.exists(p.endpoint(name, "reg/0")));
    assert.equal(await deregisterEndpoint(b, ROOT, name, "reg/0", { pruneService: true }), true);
    assert.equal(await a.exists(p.service(name)), undefined);
  });
});

describe("resolver", () => {
  test("loads on first resolve, follows registrations through watches, round-robin pick", async () => {
    const reg = await session();
    const r = await resolver();
    const name = parseServiceName("web.frontend");
    assert.deepEqual(await r.resolve("web.frontend"), []);
    const changes: [string, number][] = [];
    r.on("change", (n, eps) => changes.push([n, eps.length]));
    await registerEndpoint(reg, ROOT, name, record("web/0", 31000));
    await r.waitFor("web.frontend", (e) => e.length === 1, 5000);
    await registerEndpoint(reg, ROOT, name, record("web/1", 31001));
    await registerEndpoint(reg, ROOT, name, record("web/2", 31002));
    const eps = await r.waitFor("default/web.frontend", (e) => e.length === 3, 5000);
    assert.deepEqual(eps.map((e) => e.port), [31000, 31001, 31002]);
    const picks = [];
    for (let i = 0; i < 6; i++) picks.push((await r.pick("web.frontend"))!.port);
    assert.deepEqual(picks, [31000, 31001, 31002, 31000, 31001, 31002]);
    assert.ok([31000, 31001, 31002].includes((await r.pick("web.frontend", "random"))!.port));
    await deregisterEndpoint(reg, ROOT, name, "web/1");
    await r.waitFor("web.frontend", (e) => e.length === 2 && !e.some((x) => x.task === "web/1"), 5000);
    assert.ok(changes.every(([n]) => n === "web.frontend"));
    assert.ok(changes.length >= 3);
    const d = await r.resolveDetailed("web.frontend");
    assert.equal(d.stale, false);
    assert.ok(d.version >= 3);
    // The service list sees it, with a count.
    const list = await r.services();
    assert.deepEqual(list.find((s) => s.name === "web.frontend"), { name: "web.frontend", namespace: "default", service: "web.frontend", endpoints: 2, nodes: ["agent-1"], stale: false });
  });

  test("a service node deleted and created again is followed; its session ending removes its endpoints", async () => {
    const reg = await session();
    const r = await resolver();
    const name = parseServiceName("other/churn");
    await registerEndpoint(reg, ROOT, name, record("other:churn/0", 32000));
    await r.waitFor("other/churn", (e) => e.length === 1, 5000);
    assert.equal(await deregisterEndpoint(reg, ROOT, name, "other:churn/0", { pruneService: true }), true);
    await r.waitFor("other/churn", (e) => e.length === 0, 5000);
    await registerEndpoint(reg, ROOT, name, record("other:churn/0", 32001, 2));
    await r.waitFor("other/churn", (e) => e.length === 1 && e[0]!.port === 32001, 5000);
    assert.equal(await reg.exists(`${ROOT}/naming/other/churn/other%3Achurn%2F0`).then((s) => s?.ephemeralOwner), reg.sessionId);
    reg.close(); // a clean close removes the session's ephemerals at once
    await r.waitFor("other/churn", (e) => e.length === 0, 5000);
  });

  test("after a session expiry it opens a new session, reloads and keeps following", async () => {
    const reg = await session();
    const r = await resolver();
    const name = parseServiceName("exp.svc");
    await registerEndpoint(reg, ROOT, name, record("exp/0", 33000));
    await r.waitFor("exp.svc", (e) => e.length === 1, 5000);
    const before = r.sessionCredentials!;
    // Expire the resolver's session on purpose: attach to it from elsewhere and close it. The resolver's
    // own client may win the connection back before the close lands, so repeat (bounded) until it expires.
    const renewed = () => r.sessionCredentials !== undefined && r.sessionCredentials.clientId !== before.clientId && r.state === "connected";
    await until(
      "the resolver to open a new session after the old one expired",
      async () => {
        if (renewed()) return true;
        const killer = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 4000, resume: before });
        killer.close();
        return renewed();
      },
      { timeoutMs: 15_000, intervalMs: 1000 },
    );
    await registerEndpoint(reg, ROOT, name, record("exp/1", 33001));
    await r.waitFor("exp.svc", (e) => e.length === 2, 5000);
    assert.equal((await r.resolveDetailed("exp.svc")).stale, false);
  });

  test("while ZooKeeper is down: last known endpoints marked stale; unknown names fail fast; recovers after", async () => {
    const reg = await session();
    const r = await resolver({ loadTimeoutMs: 1000 });
    const name = parseServiceName("outage.svc");
    await registerEndpoint(reg, ROOT, name, record("outage/0", 34000));
    await r.waitFor("outage.svc", (e) => e.length === 1, 5000);
    await zk.stop();
    try {
      await until("resolver to notice", () => r.state === "disconnected");
      const d = await r.resolveDetailed("outage.svc");
      assert.equal(d.stale, true);
      assert.deepEqual(d.endpoints.map((e: Endpoint) => e.port), [34000]);
      // Fails fast: within the load timeout, while ZooKeeper is still down, not once it is back.
      let failure: Error | undefined;
      void r.resolve("never.loaded").then(
        () => undefined,
        (e: Error) => (failure = e),
      );
      await until("the unknown name to fail", () => failure, { timeoutMs: 10_000 });
      assert.match(failure!.message, /could not be loaded/);
      assert.equal(r.state, "disconnected", "answered during the outage");
    } finally {
      zk = await startZooKeeper({ dataDir: join(scratch, "zk"), port: zkPort, tickTimeMs: 1000 });
    }
    await until("reconnect", () => r.state === "connected", { timeoutMs: 15_000 });
    await until("fresh answer", async () => !(await r.resolveDetailed("outage.svc")).stale);
    // Watches work again after the reconnect.
    await registerEndpoint(reg, ROOT, name, record("outage/1", 34001));
    await r.waitFor("outage.svc", (e) => e.length === 2, 5000);
  });
});

describe("agent naming (registrar + health)", () => {
  class FakeTasks extends EventEmitter<{ change: [TaskRecord] }> {
    readonly records = new Map<string, TaskRecord>();
    all(): TaskRecord[] {
      return [...this.records.values()];
    }
    get(id: string): TaskRecord | undefined {
      return this.records.get(id);
    }
    put(r: TaskRecord): void {
      this.records.set(r.dispatch.taskId, r);
      this.emit("change", r);
    }
  }

  async function healthServer(): Promise<{ port: number; setHealthy: (ok: boolean) => void }> {
    let healthy = true;
    const s = createServer((req, res) => {
      res.statusCode = req.url === "/healthz" && healthy ? 200 : 500;
      res.end();
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    return { port: (s.address() as AddressInfo).port, setHealthy: (ok) => (healthy = ok) };
  }

  function taskRecord(taskId: string, spec: ReturnType<typeof parseTaskFile>, ports: Record<string, number>, state: TaskRecord["state"], attempt = 1): TaskRecord {
    return { dispatch: { epoch: 1, taskId, jobId: taskId.split("/")[0]!, index: 0, attempt, spec }, state, dir: scratch, ports };
  }

  test("registered once passing, removed while failing, back when recovered, stopped after failures, pruned on exit", async () => {
    const zkA = await session();
    const r = await resolver();
    const tasks = new FakeTasks();
    const unhealthy: string[] = [];
    const naming = new AgentNaming({ tasks, root: ROOT, nodeId: "agent-1", host: "127.0.0.1", dataDir: scratch, log, onUnhealthy: (id, attempt) => unhealthy.push(`${id}#${attempt}`), verifyIntervalMs: 500 });
    naming.attach(zkA);
    const h = await healthServer();
    const spec = parseTaskFile(
      `name: hc\ncommand: [x]\nports:\n  - name: http\n    check: { type: http, path: /healthz, interval: 300ms, timeout: 200ms, failures: 4 }\nservice: { name: hc.web }\n`,
      { format: "yaml" },
    );
    const plain = parseTaskFile(`name: plain\ncommand: [x]\nports: [{ name: main }]\nservice: { name: hc.plain }\n`, { format: "yaml" });
    tasks.put(taskRecord("plain/0", plain, { main: 35999 }, "running"));
    await r.waitFor("hc.plain", (e) => e.length === 1 && e[0]!.port === 35999, 5000);

    tasks.put(taskRecord("hc/0", spec, { http: h.port }, "starting"));
    tasks.put(taskRecord("hc/0", spec, { http: h.port }, "running"));
    const [ep] = await r.waitFor("hc.web", (e) => e.length === 1, 5000);
    assert.deepEqual(ep, { host: "127.0.0.1", port: h.port, ports: { http: h.port }, task: "hc/0", node: "agent-1", job: "hc" });
    assert.equal(naming.healthy("hc/0", 1), true);

    h.setHealthy(false);
    await r.waitFor("hc.web", (e) => e.length === 0, 5000);
    assert.equal(naming.healthy("hc/0", 1), false);
    h.setHealthy(true);
    await r.waitFor("hc.web", (e) => e.length === 1, 5000);
    assert.deepEqual(unhealthy, []);

    // Failing for `failures` probes in a row: the service task is handed over for a restart.
    h.setHealthy(false);
    await until("onUnhealthy", () => unhealthy.length === 1, { timeoutMs: 5000 });
    assert.deepEqual(unhealthy, ["hc/0#1"]);
    assert.deepEqual(await r.resolve("hc.web"), []);

    tasks.put(taskRecord("hc/0", spec, { http: h.port }, "exited"));
    tasks.put(taskRecord("plain/0", plain, { main: 35999 }, "exited"));
    await r.waitFor("hc.plain", (e) => e.length === 0, 5000);
    await until("service nodes pruned", async () => !(await zkA.exists(`${ROOT}/naming/default/hc.plain`)) && !(await zkA.exists(`${ROOT}/naming/default/hc.web`)));
    await naming.stop();
  });

  test("re-registers under a new session; a node removed behind its back comes back", async () => {
    const zkA = await session();
    const r = await resolver();
    const tasks = new FakeTasks();
    const dataDir = await mkdtemp(join(scratch, "agent-"));
    const naming = new AgentNaming({ tasks, root: ROOT, nodeId: "agent-9", host: "127.0.0.1", dataDir, log, onUnhealthy: () => undefined, verifyIntervalMs: 300 });
    naming.attach(zkA);
    const spec = parseTaskFile(`name: resess\ncommand: [x]\nports: [{ name: main }]\nservice: { name: resess }\n`, { format: "yaml" });
    tasks.put(taskRecord("resess/0", spec, { main: 36000 }, "running"));
    await r.waitFor("resess", (e) => e.length === 1, 5000);
    // Someone deletes the node: the periodic verification puts it back.
    await zkA.delete(`${ROOT}/naming/default/resess/resess%2F0`);
    await r.waitFor("resess", (e) => e.length === 0, 5000);
    await r.waitFor("resess", (e) => e.length === 1, 5000);
    // The agent's session ends and it gets a new one (what AgentDaemon does after an expiry).
    zkA.close();
    await r.waitFor("resess", (e) => e.length === 0, 5000);
    const zkB = await session();
    naming.attach(zkB);
    await r.waitFor("resess", (e) => e.length === 1, 5000);
    const stat = await zkB.exists(`${ROOT}/naming/default/resess/resess%2F0`);
    assert.ok(ownedBy(stat!.ephemeralOwner, zkB.sessionId));
    await naming.stop({ deregister: true });
    await r.waitFor("resess", (e) => e.length === 0, 5000);
  });
});
