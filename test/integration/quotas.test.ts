import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runTorca } from "../harness/cli.js";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

/**
 * Namespace quotas on a real cell (two managers, one agent): an admin sets a
 * quota for namespace "a"; a submit token of "a" submits within it, is
 * refused over it (403, `torca submit` exits 2, naming quota, ask and what is
 * left), gets its share back by killing a job, and reads its use with
 * `torca quota a --json`; only admins set quotas, and prod quotas cannot
 * exceed the cell's capacity.
 */

type Amounts = { cpu: number; memory: number; instances: number };
type QuotaView = { namespace: string; quota: { prod: Amounts; batch: { cpu: number; memory: number; instances: number | null } } | null; used: { prod: Amounts; batch: Amounts } };
type Answer = { status: number; body: { error?: { message: string; field?: string } } & Record<string, unknown> };

const MiB = 1024 ** 2;

async function call(url: string, token: string, method = "GET", body?: string, contentType = "application/json"): Promise<Answer> {
  const res = await fetch(url, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": contentType } : {}) }, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Answer["body"] };
}

/** `instances` tasks of 0.1 cores and 32MiB each (priority 100: the batch band), sleeping long enough to stay live. */
function sleeper(name: string, instances: number): string {
  return batchJob(name, ["sleep", "120"], `instances: ${instances}\n`);
}

describe("namespace quotas", { timeout: 240_000 }, () => {
  let tc: TestCell;
  let env: Record<string, string>;
  let envA: Record<string, string>;
  let primary: string;
  let backup: string;
  let tokenA: string;

  before(async () => {
    tc = await startTestCell({ managers: 2, agents: 1 });
    primary = await tc.primaryUrl();
    backup = tc.cell.managerUrls.find((u) => u !== primary)!;
    env = { TORCA_MANAGER: tc.cell.managerUrls.join(","), TORCA_TOKEN: tc.cell.token };
    const created = await runTorca(["--json", "token", "create", "--name", "team-a", "--namespace", "a", "--role", "submit"], env);
    assert.equal(created.code, 0, created.stderr);
    tokenA = (JSON.parse(created.stdout) as { token: string }).token;
    envA = { ...env, TORCA_TOKEN: tokenA };
  });

  after(async () => {
    await tc?.close();
  });

  it("lets only an admin set a quota", async () => {
    const body = JSON.stringify({ prod: { cpu: 1, memory: "1GiB" }, batch: { cpu: 1, memory: "1GiB" } });
    const refused = await call(`${primary}/v1/quotas/a`, tokenA, "PUT", body);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.match(refused.body.error?.message ?? "", /team-a.*lacks admin/);
    const cli = await runTorca(["quota", "set", "a", "--prod-cpu", "1", "--prod-memory", "1GiB", "--batch-cpu", "1", "--batch-memory", "1GiB"], envA);
    assert.notEqual(cli.code, 0, "a submit token cannot set its own quota");
    assert.match(cli.stderr, /lacks admin/);
    assert.equal((await call(`${primary}/v1/quotas/a`, tokenA)).body.quota, null, "nothing was stored: a is still unlimited");
  });

  it("sets a quota with the CLI, seen by every manager", async () => {
    const r = await runTorca(["--json", "quota", "set", "a", "--prod-cpu", "0.5", "--prod-memory", "256MiB", "--batch-cpu", "0.3", "--batch-memory", "256MiB", "--instances", "5"], env);
    assert.equal(r.code, 0, r.stderr);
    const set = JSON.parse(r.stdout) as QuotaView;
    assert.deepEqual(set.quota, { prod: { cpu: 0.5, memory: 256 * MiB, instances: 5 }, batch: { cpu: 0.3, memory: 256 * MiB, instances: 5 } });
    await until("the backup sees the quota", async () => (await call(`${backup}/v1/quotas/a`, tc.cell.token)).body.quota !== null, { timeoutMs: 5000 });
  });

  it("refuses prod quotas beyond the cell's capacity", async () => {
    const r = await runTorca(["quota", "set", "b", "--prod-cpu", "100000", "--prod-memory", "1GiB", "--batch-cpu", "0", "--batch-memory", "0"], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /prod quotas together cannot exceed the cell's capacity: with namespace b at 100000, prod cpu quotas total 100000\.5, over the [\d.]+ allocatable on 1 ready node/);
    assert.equal((await call(`${primary}/v1/quotas/b`, tc.cell.token)).body.quota, null);
  });

  it("admits a submission within the quota and refuses one over it, naming quota, ask and what is left", async () => {
    const within = await call(`${primary}/v1/jobs`, tokenA, "POST", sleeper("first", 2), "application/yaml");
    assert.equal(within.status, 201, JSON.stringify(within.body));
    assert.equal(within.body.id, "a:first");
    const over = await call(`${primary}/v1/jobs`, tokenA, "POST", sleeper("second", 2), "application/yaml");
    assert.equal(over.status, 403, JSON.stringify(over.body));
    assert.equal(over.body.error?.message, "namespace a: batch cpu quota 0.3 exceeded: job asks 2 × 0.1 = 0.2, 0.2 in use, 0.1 left");
    assert.equal(over.body.error?.field, "resources.cpu");
    const file = join(tc.cell.dir, "second.yaml");
    writeFileSync(file, sleeper("second", 2));
    const cli = await runTorca(["submit", file], envA);
    assert.equal(cli.code, 2, `over quota: exit 2 (${cli.stderr})`);
    assert.match(cli.stderr, /batch cpu quota 0\.3 exceeded: job asks 2 × 0\.1 = 0\.2, 0\.2 in use, 0\.1 left/);
    assert.equal((await call(`${primary}/v1/jobs/a:second`, tokenA)).status, 404, "nothing of the refused job was stored");
  });

  it("shows use against quota with torca quota, to the namespace's own token", async () => {
    const r = await runTorca(["--json", "quota", "a"], envA);
    assert.equal(r.code, 0, r.stderr);
    const view = JSON.parse(r.stdout) as QuotaView;
    assert.equal(view.namespace, "a");
    assert.equal(view.quota?.batch.cpu, 0.3);
    assert.deepEqual(view.used.batch, { cpu: 0.2, memory: 64 * MiB, instances: 2 });
    assert.deepEqual(view.used.prod, { cpu: 0, memory: 0, instances: 0 });
    const table = await runTorca(["quota"], envA);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^a\s+batch\s+0\.2 \/ 0\.3\s+64MiB \/ 256MiB\s+2 \/ 5$/m);
    const other = await runTorca(["quota", "b"], envA);
    assert.notEqual(other.code, 0, "another namespace's quota is not readable");
    assert.match(other.stderr, /lacks read on namespace "b"/);
  });

  it("shows the quota on the overview page", async () => {
    const login = await fetch(`${primary}/?token=${encodeURIComponent(tc.cell.token)}`, { redirect: "manual" });
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!;
    const html = await (await fetch(`${primary}/`, { headers: { cookie } })).text();
    assert.match(html, /<tr data-quota="a\/batch"><td>a<\/td><td>batch<\/td><td>0\.2 \/ 0\.3<\/td>/);
  });

  it("gives a killed job's share back at once", async () => {
    assert.equal((await call(`${primary}/v1/jobs/a:first`, tokenA, "DELETE")).status, 200);
    const again = await call(`${primary}/v1/jobs`, tokenA, "POST", sleeper("second", 2), "application/yaml");
    assert.equal(again.status, 201, JSON.stringify(again.body));
    const view = (await call(`${primary}/v1/quotas/a`, tokenA)).body as unknown as QuotaView;
    assert.deepEqual(view.used.batch, { cpu: 0.2, memory: 64 * MiB, instances: 2 }, "the killed job no longer counts; the new one does");
  });

  it("admits only one of two concurrent submissions that each fit the remainder alone", async () => {
    assert.equal((await call(`${primary}/v1/jobs/a:second`, tokenA, "DELETE")).status, 200);
    const answers = await Promise.all(["racer-1", "racer-2"].map((name) => call(`${primary}/v1/jobs`, tokenA, "POST", sleeper(name, 2), "application/yaml")));
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 403], JSON.stringify(answers.map((a) => a.body)));
    assert.match(answers.find((a) => a.status === 403)!.body.error?.message ?? "", /0\.2 in use, 0\.1 left$/);
  });

  it("leaves a namespace unlimited once its quota is removed", async () => {
    const r = await runTorca(["quota", "remove", "a"], env);
    assert.equal(r.code, 0, r.stderr);
    const third = await call(`${primary}/v1/jobs`, tokenA, "POST", sleeper("third", 4), "application/yaml");
    assert.equal(third.status, 201, JSON.stringify(third.body));
  });
});
