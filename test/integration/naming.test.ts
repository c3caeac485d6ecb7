import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import * as dnsPacket from "dns-packet";
import type { DecodedPacket, SrvAnswer, StringAnswer } from "dns-packet";
import type { Got } from "got";
import { LocalCell } from "../../src/cell/local-cell.js";
import { freePort } from "../../src/cell/ports.js";
import { createHttpClient } from "../../src/common/http.js";
import { DnsServer } from "../../naming/dns.js";
import { createResolver, type Endpoint, type Resolver } from "../../naming/resolver.js";
import { until } from "../harness/wait.js";

/*
 * Naming end to end on a local cell (real ZooKeeper, manager and agent
 * processes, process driver): three instances of a service appear through
 * the resolver, the manager's HTTP API, the CLI and DNS; a task that exits,
 * a failing health check and a SIGKILLed agent take endpoints away.
 */

const BIN = resolve(new URL("../../../bin/torca.js", import.meta.url).pathname);
const run = promisify(execFile);

// /healthz answers 200 or 500 (flipped by /toggle); /exit ends the process at once.
const SERVER = [
  'const http = require("node:http");',
  "let healthy = true;",
  "http.createServer((req, res) => {",
  '  if (req.url === "/exit") { res.end("bye"); setImmediate(() => process.exit(3)); return; }',
  '  if (req.url === "/toggle") { healthy = !healthy; return res.end(String(healthy)); }',
  '  if (req.url === "/healthz") { res.statusCode = healthy ? 200 : 500; return res.end(); }',
  "  res.end(process.env.TORCA_TASK);",
  '}).listen(Number(process.env.TORCA_PORT_HTTP), "127.0.0.1");',
].join("\n");

const JOB = JSON.stringify({
  name: "web",
  type: "service",
  instances: 3,
  isolation: "process",
  command: ["node", "-e", SERVER],
  resources: { cpu: 0.1, memory: "64MiB" },
  ports: [{ name: "http", check: { type: "http", path: "/healthz", interval: "300ms", timeout: "200ms", failures: 8 } }, { name: "admin" }],
  service: { name: "web.frontend" },
  restart: { attempts: 1, delay: "10s" },
});

describe("naming on a local cell", () => {
  let dir: string;
  let cell: LocalCell;
  let api: Got;
  let managerUrl: string;
  let resolver: Resolver;
  let dns: DnsServer;
  let dnsPort: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "torca-naming-it-"));
    cell = new LocalCell({ dir, managers: 1, agents: 1, agentDriver: "process", sessionTimeout: "2s", tickTimeMs: 1000, stopTasksOnExit: true });
    await cell.start();
    managerUrl = (await cell.waitForPrimary(60_000)).url;
    await cell.waitForNodes(1, 60_000);
    api = createHttpClient({ token: cell.token, timeoutMs: 10_000, retries: 0 });
    resolver = await createResolver({ zookeeper: cell.zookeeper!.connectString, sessionTimeoutMs: 4000 });
    dns = new DnsServer({ resolver, port: await freePort(), host: "127.0.0.1", ttl: 5 });
    dnsPort = (await dns.start()).port;
    await api.post(`${managerUrl}/v1/jobs`, { body: JOB, headers: { "content-type": "application/json" } });
  });

  after(async () => {
    await dns?.close();
    resolver?.close();
    // Kill the job and wait for the agent to see every task exit before stopping the cell: a dispatch
    // that lands while the agent is shutting down could otherwise start a task nobody stops.
    if (api && managerUrl) {
      await api.delete(`${managerUrl}/v1/jobs/web`).catch(() => undefined);
      const agentUrl = cell.daemons.get("agent-1")!.url;
      const allExited = async () => (await api.get(`${agentUrl}/v1/tasks`).json<{ tasks: { state: string }[] }>()).tasks.every((x) => x.state === "exited");
      // Best effort: the cell is stopped either way.
      await until("the agent to see every task exit", allExited, { timeoutMs: 20_000, intervalMs: 200 }).catch(() => undefined);
    }
    // Agents also stop their tasks on exit (stopTasksOnExit).
    await cell?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const dnsQuery = (name: string, type: "A" | "SRV") =>
    new Promise<DecodedPacket & { rcode?: string }>((resolveQ, reject) => {
      const sock = createSocket("udp4");
      const timer = setTimeout(() => {
        sock.close();
        reject(new Error(`no DNS answer for ${name}`));
      }, 3000);
      sock.on("message", (msg) => {
        clearTimeout(timer);
        sock.close();
        resolveQ(dnsPacket.decode(msg) as DecodedPacket & { rcode?: string });
      });
      sock.send(dnsPacket.encode({ type: "query", id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }), dnsPort, "127.0.0.1");
    });

  const ports = (eps: Endpoint[]) => eps.map((e) => e.port).sort();

  type NamesAnswer = { name: string; endpoints: Endpoint[]; stale: boolean; version: number };
  /** The manager's answer once it satisfies `ok`, by long poll (its resolver is another session and may lag ours by a few ms). */
  const managerAnswer = async (ok: (eps: Endpoint[]) => boolean, timeoutMs = 5000): Promise<NamesAnswer> => {
    const url = `${managerUrl}/v1/names/web.frontend`;
    let r = await api.get(url).json<NamesAnswer>();
    if (ok(r.endpoints)) return r;
    // Each probe is a long poll: the manager answers when the name changes, or after a second.
    return until("the manager's answer", async () => {
      r = await api.get(`${url}?index=${r.version}&wait=1`).json<NamesAnswer>();
      return ok(r.endpoints) && r;
    }, { timeoutMs, intervalMs: 0 });
  };

  test("three healthy instances: resolver, HTTP, CLI and DNS agree", async () => {
    const eps = await resolver.waitFor("web.frontend", (e) => e.length === 3, 60_000);
    assert.deepEqual(eps.map((e) => e.task), ["web/0", "web/1", "web/2"]);
    for (const e of eps) {
      assert.equal(e.host, "127.0.0.1");
      assert.equal(e.node, "agent-1");
      assert.equal(e.port, e.ports.http);
      assert.ok(e.ports.admin && e.ports.admin !== e.port);
      // The endpoint really is that task.
      assert.equal(await api.get(`http://127.0.0.1:${e.port}/`).text(), e.task);
    }

    const http = await managerAnswer((e) => e.length === 3);
    assert.equal(http.name, "web.frontend");
    assert.equal(http.stale, false);
    assert.deepEqual(ports(http.endpoints), ports(eps));
    const viaNs = await api.get(`${managerUrl}/v1/names/default/web.frontend`).json<{ endpoints: Endpoint[] }>();
    assert.deepEqual(ports(viaNs.endpoints), ports(eps));
    const list = await api.get(`${managerUrl}/v1/names`).json<{ services: { name: string; endpoints: number; nodes: string[] }[] }>();
    assert.deepEqual(list.services.find((s) => s.name === "web.frontend"), { name: "web.frontend", namespace: "default", service: "web.frontend", endpoints: 3, nodes: ["agent-1"], stale: false });
    const bad = await api.get(`${managerUrl}/v1/names/Not_A_Name`, { throwHttpErrors: false });
    assert.equal(bad.statusCode, 400);

    const cli = await run(process.execPath, [BIN, "resolve", "web.frontend", "--json"], { env: { ...process.env, TORCA_MANAGER: managerUrl, TORCA_TOKEN: cell.token } });
    const fromCli = JSON.parse(cli.stdout) as { endpoints: Endpoint[] };
    assert.deepEqual(ports(fromCli.endpoints), ports(eps));

    const srv = await dnsQuery("web.frontend.default.torca", "SRV");
    assert.equal(srv.rcode, "NOERROR");
    assert.deepEqual(((srv.answers ?? []) as SrvAnswer[]).map((a) => a.data.port).sort(), ports(eps));
    assert.ok(((srv.answers ?? []) as SrvAnswer[]).every((a) => a.data.target === "agent-1.node.torca" && a.ttl === 5));
    const a = await dnsQuery("web.frontend.default.torca", "A");
    assert.deepEqual(((a.answers ?? []) as StringAnswer[]).map((x) => x.data), ["127.0.0.1"]);
    const admin = await dnsQuery("_admin._tcp.web.frontend.default.torca", "SRV");
    assert.deepEqual(((admin.answers ?? []) as SrvAnswer[]).map((x) => x.data.port).sort(), eps.map((e) => e.ports.admin!).sort());
    assert.equal((await dnsQuery("nothing.default.torca", "A")).rcode, "NXDOMAIN");
    // A resolver's view: dig over UDP and over TCP (same port) print the same records.
    const digAnswer = async (transport: string) =>
      (await run("dig", ["@127.0.0.1", "-p", String(dnsPort), transport, "+tries=1", "+short", "SRV", "web.frontend.default.torca"])).stdout.trim().split("\n").sort();
    const overUdp = await digAnswer("+notcp");
    assert.equal(overUdp.length, 3);
    assert.deepEqual(await digAnswer("+tcp"), overUdp);
  });

  // How fast an endpoint leaves is a bench figure (bench/naming.ts); here, that the exit removes it.
  test("a task that exits leaves the other two, while its agent's session lives on", async () => {
    const eps = await resolver.resolve("web.frontend");
    const victim = eps.find((e) => e.task === "web/0")!;
    await api.get(`http://127.0.0.1:${victim.port}/exit`).catch(() => undefined);
    const left = await resolver.waitFor("web.frontend", (e) => e.length === 2, 5000);
    assert.deepEqual(left.map((e) => e.task).sort(), eps.filter((e) => e !== victim).map((e) => e.task).sort(), "only the exited task's endpoint left");
    const http = await managerAnswer((e) => e.length === 2);
    assert.equal(http.endpoints.length, 2);
  });

  test("a failing health check removes the endpoint and a recovered one brings it back", async () => {
    const eps = await resolver.resolve("web.frontend");
    const sick = eps.find((e) => e.task === "web/1")!;
    assert.equal(await api.get(`http://127.0.0.1:${sick.port}/toggle`).text(), "false");
    await resolver.waitFor("web.frontend", (e) => !e.some((x) => x.task === "web/1"), 5000);
    const agentUrl = cell.daemons.get("agent-1")!.url;
    const report = await api.get(`${agentUrl}/v1/tasks`).json<{ tasks: { taskId: string; state: string }[] }>();
    assert.equal(report.tasks.find((t) => t.taskId === "web/1")?.state, "running", "unhealthy, but not restarted yet");
    assert.equal(await api.get(`http://127.0.0.1:${sick.port}/toggle`).text(), "true");
    const back = await resolver.waitFor("web.frontend", (e) => e.some((x) => x.task === "web/1"), 5000);
    assert.equal(back.find((x) => x.task === "web/1")!.port, sick.port);

    // Failing for good: after `failures` probes the agent stops it so the restart policy takes over.
    await api.get(`http://127.0.0.1:${sick.port}/toggle`);
    const state = await until(
      "the agent to stop the unhealthy task",
      async () => {
        const t = await api.get(`${agentUrl}/v1/tasks`).json<{ tasks: { taskId: string; state: string }[] }>();
        const s = t.tasks.find((x) => x.taskId === "web/1")?.state ?? "gone";
        return s !== "running" && s;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    assert.equal(state, "exited", "the unhealthy service task was stopped");
    assert.ok(!(await resolver.resolve("web.frontend")).some((x) => x.task === "web/1"));
  });

  test("a SIGKILLed agent's endpoints vanish after its session timeout", async () => {
    const before = await resolver.resolve("web.frontend");
    assert.ok(before.length >= 1);
    await cell.stopDaemon("agent-1", "SIGKILL");
    // The agent's process is gone, its session not yet: the endpoints live as long as the session.
    assert.deepEqual((await resolver.resolve("web.frontend")).map((e) => e.task).sort(), before.map((e) => e.task).sort(), "endpoints went with the process, before the session expired");
    await resolver.waitFor("web.frontend", (e) => e.length === 0, 15_000);
    const http = await managerAnswer((e) => e.length === 0);
    assert.equal(http.endpoints.length, 0);
    assert.equal((await dnsQuery("web.frontend.default.torca", "SRV")).rcode, "NXDOMAIN");
    // Bring the agent back: it re-adopts the running tasks, registers them under its new session, and on cleanup stops them.
    cell.startDaemon("agent-1");
    await resolver.waitFor("web.frontend", (e) => e.length >= 1, 30_000);
  });
});
