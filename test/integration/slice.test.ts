import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

const BIN = join(fileURLToPath(new URL("../../..", import.meta.url)), "bin", "torca.js");
const EXAMPLES = join(fileURLToPath(new URL("../../..", import.meta.url)), "config", "examples");

function torca(c: TestCell, ...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, TORCA_MANAGER: c.cell.managerUrls.join(","), TORCA_TOKEN: c.cell.token, TORCA_CELL_DIR: "/nonexistent" },
  });
}

describe("the vertical slice: a local cell runs a submitted task end to end", () => {
  let c: TestCell;
  before(async () => {
    c = await startTestCell({ managers: 2, agents: 1 });
  });
  after(async () => {
    await c?.close();
  });

  test("torca submit hello.yaml --wait completes, status shows exit 0, logs print the output", () => {
    const sub = torca(c, "submit", join(EXAMPLES, "hello.yaml"), "--wait");
    assert.equal(sub.status, 0, sub.stderr);
    assert.match(sub.stdout, /hello complete/);

    const status = torca(c, "status", "hello", "--json");
    assert.equal(status.status, 0, status.stderr);
    const j = JSON.parse(status.stdout) as { status: string; taskList: { state: string; exit: { exitCode: number } }[] };
    assert.equal(j.status, "complete");
    assert.equal(j.taskList[0]!.state, "completed");
    assert.equal(j.taskList[0]!.exit.exitCode, 0);

    const logs = torca(c, "logs", "hello/0");
    assert.equal(logs.status, 0, logs.stderr);
    assert.match(logs.stdout, /hello from hello\/0 on agent-1/);
  });

  test("a malformed task file is refused with the field and the line, exit code 2", () => {
    const bad = spawnSync("bash", ["-c", `printf 'name: bad\\ncommand: ["x"]\\nresources:\\n  memory: lots\\n' > /tmp/torca-bad-$$.yaml; echo /tmp/torca-bad-$$.yaml`], { encoding: "utf8" }).stdout.trim();
    try {
      const r = torca(c, "submit", bad);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /line 4|:4:/);
      assert.match(r.stderr, /resources\.memory/);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, "no stack trace");
    } finally {
      rmSync(bad, { force: true });
    }
  });

  test("the API answers a malformed body with 400 and a field, and refuses a missing token with 401", async () => {
    const url = await c.primaryUrl();
    const r = await c.api.post(`${url}/v1/jobs`, { body: "name: x\ninstances: zero\ncommand: [a]\n", throwHttpErrors: false });
    assert.equal(r.statusCode, 400);
    const body = JSON.parse(r.body) as { error: { code: string; field: string; line: number } };
    assert.equal(body.error.code, "invalid_input");
    assert.equal(body.error.field, "instances");
    assert.equal(body.error.line, 2);
    const { got } = await import("got");
    const noAuth = await got.get(`${url}/v1/jobs`, { throwHttpErrors: false });
    assert.equal(noAuth.statusCode, 401);
  });

  test("a write sent to the backup is redirected (307) to the primary", async () => {
    const primary = await c.primaryUrl();
    const backup = c.cell.managerUrls.find((u) => u !== primary)!;
    const r = await c.api.post(`${backup}/v1/jobs`, { body: "name: x\ncommand: [a]\n", throwHttpErrors: false });
    assert.equal(r.statusCode, 307);
    assert.equal(new URL(r.headers.location!).origin, new URL(primary).origin);
    const read = await c.api.get(`${backup}/v1/jobs/hello`).json<{ status: string }>();
    assert.equal(read.status, "complete", "the backup serves reads from its warm copy");
  });

  test("the agent reports a running task's resource usage from its cgroup", async () => {
    await c.submit("name: busy\ntype: service\nisolation: process\ncommand: [/bin/sh, -c, 'while :; do :; done']\nresources: { cpu: 0.2, memory: 32MiB }\n");
    await c.waitJob("busy", (j) => j.taskList[0]?.state === "running", 20_000, "running");
    const agentUrl = c.cell.daemons.get("agent-1")!.url;
    type Usage = { cpuNs?: number; memoryBytes?: number; pids?: number };
    const usage = await until(
      "the agent to report busy/0's cpu time",
      async () => {
        const r = await c.api.get(`${agentUrl}/v1/tasks`).json<{ tasks: { taskId: string; state: string; usage?: Usage }[] }>();
        const u = r.tasks.find((t) => t.taskId === "busy/0" && t.state === "running")?.usage;
        return (u?.cpuNs ?? 0) > 0 && u;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    assert.ok((usage.memoryBytes ?? 0) > 0, "memory measured");
    assert.ok((usage.pids ?? 0) >= 1, "pids counted");
    await c.api.delete(`${await c.primaryUrl()}/v1/jobs/busy`);
    await c.waitJob("busy", (j) => j.status === "dead", 20_000, "dead");
  });

  test("state lives in ZooKeeper: after the whole cell restarts, the job is still listed", async () => {
    await c.cell.stop();
    await c.cell.start();
    await c.cell.waitForNodes(1, 60_000);
    const jobs = torca(c, "jobs", "--json");
    assert.equal(jobs.status, 0, jobs.stderr);
    const list = JSON.parse(jobs.stdout) as { id: string; status: string }[];
    assert.ok(list.some((j) => j.id === "hello" && j.status === "complete"), jobs.stdout);
  });
});
