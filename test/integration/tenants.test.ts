import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runTorca } from "../harness/cli.js";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { eventually, until } from "../harness/wait.js";

/**
 * Namespaces as tenants and a credential per daemon, on a real cell (two
 * managers, one agent): what a submit token of namespace "a" may and may not
 * do, token create/list/revoke/expiry through the CLI, the agent's own token,
 * and the audit log.
 */

type Answer = { status: number; body: { error?: { message: string; field?: string } } & Record<string, unknown> };

async function call(url: string, token: string, method = "GET", body?: string, contentType = "application/yaml"): Promise<Answer> {
  const res = await fetch(url, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": contentType } : {}) }, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: Answer["body"];
  try {
    parsed = JSON.parse(text) as Answer["body"];
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}

function assertForbidden(a: Answer, ...mentions: string[]): void {
  assert.equal(a.status, 403, JSON.stringify(a.body));
  for (const m of mentions) assert.match(a.body.error?.message ?? "", new RegExp(m.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), `403 names ${m}`);
}

/** Collects an SSE stream's text until aborted. */
function openEvents(url: string, token: string): { text: () => string; close: () => void } {
  const abort = new AbortController();
  let text = "";
  void (async () => {
    try {
      const res = await fetch(`${url}/v1/events?types=job,task`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    } catch {
      // aborted at close()
    }
  })();
  return { text: () => text, close: () => abort.abort() };
}

describe("tenants and daemon credentials", { timeout: 240_000 }, () => {
  let tc: TestCell;
  let env: Record<string, string>;
  let primary: string;
  let backup: string;
  let tokenA: string;
  let agentToken: string;

  before(async () => {
    tc = await startTestCell({ managers: 2, agents: 1, managerExtra: { retention: { expiredTokens: "3s" } } });
    primary = await tc.primaryUrl();
    backup = tc.cell.managerUrls.find((u) => u !== primary)!;
    env = { TORCA_MANAGER: tc.cell.managerUrls.join(","), TORCA_TOKEN: tc.cell.token };
    agentToken = readFileSync(tc.cell.agentTokenFile, "utf8").trim();
  });

  after(async () => {
    await tc?.close();
  });

  it("writes one 0600 token file per role, and gives agents no admin token", () => {
    for (const f of [tc.cell.tokenFile, tc.cell.agentTokenFile, tc.cell.managerTokenFile]) {
      assert.equal((statSync(f).mode & 0o777).toString(8), "600", f);
    }
    const agentConfig = readFileSync(tc.cell.daemons.get("agent-1")!.config, "utf8");
    assert.ok(!agentConfig.includes(tc.cell.token), "the agent's config does not hold the admin token");
    assert.ok(!agentConfig.includes(readFileSync(tc.cell.managerTokenFile, "utf8").trim()), "nor the managers' token (only its digest)");
    assert.ok(!agentConfig.includes(`"tokenFile"`), "nor the admin token file's path");
  });

  it("creates a namespaced token with the CLI and prints its secret once", async () => {
    const r = await runTorca(["--json", "token", "create", "--name", "team-a", "--namespace", "a", "--role", "submit"], env);
    assert.equal(r.code, 0, r.stderr);
    const created = JSON.parse(r.stdout) as { name: string; token: string; namespaces: string[]; role: string; expiresAt: number | null };
    assert.deepEqual(Object.keys(created).sort(), ["expiresAt", "name", "namespaces", "role", "token"]);
    assert.equal(created.name, "team-a");
    assert.deepEqual(created.namespaces, ["a"]);
    assert.equal(created.role, "submit");
    assert.equal(created.expiresAt, null);
    assert.match(created.token, /^[0-9a-f]{64}$/);
    tokenA = created.token;
    const list = await runTorca(["--json", "token", "list"], env);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(!list.stdout.includes(tokenA), "the list never shows a secret");
    assert.deepEqual((JSON.parse(list.stdout) as { name: string }[]).map((t) => t.name), ["team-a"]);
    // Every manager accepts it at once, the one that did not create it included.
    for (const m of tc.cell.managerUrls) assert.equal((await call(`${m}/v1/jobs`, tokenA)).status, 200, m);
  });

  it("submits into the token's namespace, and refuses other namespaces and user: root", async () => {
    const mine = await call(`${primary}/v1/jobs`, tokenA, "POST", batchJob("hello", ["sh", "-c", "echo hello-a; sleep 30"]));
    assert.equal(mine.status, 201, JSON.stringify(mine.body));
    assert.equal(mine.body.id, "a:hello", "a file without namespace: lands in the token's one namespace");
    assertForbidden(await call(`${primary}/v1/jobs`, tokenA, "POST", batchJob("intruder", ["true"], "namespace: b\n")), "team-a", "submit", '"b"');
    const root = await call(`${primary}/v1/jobs`, tokenA, "POST", batchJob("rooted", ["id"], "user: root\n"));
    assertForbidden(root, "team-a", "root");
    assert.equal(root.body.error?.field, "user");
    const file = join(tc.cell.dir, "rooted.yaml");
    writeFileSync(file, batchJob("rooted", ["id"], "user: root\n"));
    const cli = await runTorca(["submit", file], { ...env, TORCA_TOKEN: tokenA });
    assert.equal(cli.code, 2, `exit 2 for user: root with a submit token: ${cli.stderr}`);
    assert.match(cli.stderr, /root/);
  });

  it("hides namespace b's jobs, tasks, logs and events from a token of namespace a", async () => {
    const events = openEvents(primary, tokenA);
    try {
      await until("the event stream is open", () => events.text().includes(": connected"));
      const other = await tc.submit(batchJob("secret", ["sh", "-c", "echo secret-of-b; sleep 60"], "namespace: b\n"));
      assert.equal(other.id, "b:secret");
      await tc.waitJob(other.id, (j) => j.taskList.some((t) => t.state === "running"), 30_000, "b:secret running");
      const listed = await call(`${primary}/v1/jobs`, tokenA);
      const ids = (listed.body.jobs as { id: string }[]).map((j) => j.id);
      assert.ok(ids.includes("a:hello") && !ids.includes("b:secret"), `list filtered: ${ids.join(",")}`);
      assertForbidden(await call(`${primary}/v1/jobs/b:secret`, tokenA), "team-a", '"b"');
      assertForbidden(await call(`${primary}/v1/tasks/${encodeURIComponent("b:secret/0")}`, tokenA), "team-a", '"b"');
      assertForbidden(await call(`${primary}/v1/tasks/${encodeURIComponent("b:secret/0")}/logs`, tokenA), "team-a", "read", '"b"');
      assertForbidden(await call(`${primary}/v1/jobs/b:secret`, tokenA, "DELETE"), "team-a", "submit", '"b"');
      const nodes = await call(`${primary}/v1/nodes`, tokenA);
      assert.ok(!JSON.stringify(nodes.body).includes("b:secret"), "node views list only the token's tasks");
      const metrics = await fetch(`${primary}/metrics`, { headers: { authorization: `Bearer ${tokenA}` } }).then((r) => r.text());
      assert.match(metrics, /torca_jobs\{status="[a-z]+"\} 1\n/, "job counts cover namespace a only (one job)");
      // The admin still sees and kills it.
      assert.equal((await call(`${primary}/v1/jobs/b:secret`, tc.cell.token)).status, 200);
      // An event of namespace a after b's proves the stream was live throughout.
      await call(`${primary}/v1/jobs/a:hello`, tokenA, "DELETE");
      await until("a:hello's kill on the stream", () => events.text().includes('"id":"a:hello"'), { timeoutMs: 15_000 });
      assert.ok(!events.text().includes("b:secret"), "no event of namespace b reaches a token of namespace a");
    } finally {
      events.close();
    }
    const logsA = await call(`${primary}/v1/tasks/${encodeURIComponent("a:hello/0")}/logs`, tokenA);
    assert.notEqual(logsA.status, 403, "its own logs are readable");
  });

  it("lets the agent's own token report and fetch blobs, and nothing else", async () => {
    const missingBlob = `sha256:${"0".repeat(64)}`;
    assert.equal((await call(`${primary}/v1/blobs/${missingBlob}`, agentToken)).status, 404, "blobs: allowed (this one does not exist)");
    assertForbidden(await call(`${primary}/v1/jobs`, agentToken, "POST", batchJob("stolen", ["true"])), '"agents"', "agent", "submit");
    assertForbidden(await call(`${primary}/v1/jobs/b:secret`, agentToken, "DELETE"), '"agents"', "submit");
    assertForbidden(await call(`${primary}/v1/nodes/agent-1/drain`, agentToken, "POST", "{}", "application/json"), '"agents"', "admin");
    assertForbidden(await call(`${primary}/v1/packages/stolen/1.0`, agentToken, "PUT", "not a tarball", "application/gzip"), '"agents"', "submit");
    assertForbidden(await call(`${primary}/v1/jobs`, agentToken), '"agents"', "read");
    assertForbidden(await call(`${primary}/v1/tokens`, agentToken, "POST", JSON.stringify({ name: "x", role: "submit", namespaces: ["a"] }), "application/json"), '"agents"', "admin");
    // The managers' token is for agents only: managers do not accept it.
    const managerToken = readFileSync(tc.cell.managerTokenFile, "utf8").trim();
    assert.equal((await call(`${primary}/v1/jobs`, managerToken)).status, 401);
    // Agents accept the agent token from each other for package blobs only: it cannot stop tasks or read an agent's status.
    const agentUrl = tc.cell.daemons.get("agent-1")!.url;
    assertForbidden(await call(`${agentUrl}/v1/tasks/x%2F0/stop`, agentToken, "POST", JSON.stringify({ epoch: 1, attempt: 1 }), "application/json"), '"agents"', "control");
    assertForbidden(await call(`${agentUrl}/v1/status`, agentToken), '"agents"', "read");
    assert.equal((await call(`${agentUrl}/v1/blobs/${missingBlob}`, agentToken)).status, 404, "peer blobs: allowed (this one is not cached)");
    assert.equal((await call(`${agentUrl}/v1/status`, managerToken)).status, 200, "the agent accepts the managers' token");
  });

  it("refuses a revoked token on every manager within a second, and an expired one, which leaves ZooKeeper after manager.retention.expiredTokens", async () => {
    const r = await runTorca(["--json", "token", "revoke", "team-a"], env);
    assert.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    for (const m of [primary, backup]) {
      await eventually(`${m} refuses the revoked token`, async () => assert.equal((await call(`${m}/v1/jobs`, tokenA)).status, 401), { timeoutMs: 1000 });
    }
    assert.ok(Date.now() - t0 < 2000);
    const short = await runTorca(["--json", "token", "create", "--name", "brief", "--namespace", "a", "--role", "read", "--ttl", "1s"], env);
    assert.equal(short.code, 0, short.stderr);
    const brief = JSON.parse(short.stdout) as { token: string; expiresAt: number };
    assert.ok(brief.expiresAt > Date.now() - 5000 && brief.expiresAt <= Date.now() + 1000);
    await until("the token expires", async () => (await call(`${backup}/v1/jobs`, brief.token)).status === 401, { timeoutMs: 5000 });
    const refused = await call(`${primary}/v1/jobs`, brief.token);
    assert.match(refused.body.error?.message ?? "", /expired/);
    await until("the expired token to leave the list (3 s after its expiry)", async () => {
      const list = JSON.parse((await runTorca(["--json", "token", "list"], env)).stdout) as { name: string }[];
      return !list.some((t) => t.name === "brief");
    }, { timeoutMs: 20_000, intervalMs: 500 });
    assert.ok(Date.now() >= brief.expiresAt + 3000, "not before its retention ran out");
  });

  it("writes every mutating call to the audit log, readable by admins only", async () => {
    const r = await runTorca(["--json", "audit", "--limit", "200"], env);
    assert.equal(r.code, 0, r.stderr);
    const entries = JSON.parse(r.stdout) as { who: string; method: string; path: string; status: number; from: string; at: number }[];
    const find = (who: string, method: string, path: string, status: number) => entries.find((e) => e.who === who && e.method === method && e.path === path && e.status === status);
    assert.ok(find("team-a", "POST", "/v1/jobs", 201), "the accepted submission");
    assert.ok(find("team-a", "DELETE", "/v1/jobs/b:secret", 403), "the refused kill");
    assert.ok(find("agents", "POST", "/v1/nodes/agent-1/drain", 403), "the agent token's refused drain");
    assert.ok(find("cluster", "DELETE", "/v1/tokens/team-a", 200), "the revocation");
    assert.ok(entries.every((e) => e.from && e.at > 0));
    assert.ok(!entries.some((e) => e.path.endsWith("/report")), "agent reports are not audited");
    const b = JSON.parse((await runTorca(["--json", "token", "create", "--name", "team-b", "--namespace", "b", "--role", "read"], env)).stdout) as { token: string };
    assertForbidden(await call(`${primary}/v1/audit`, b.token), "team-b", "admin");
  });
});
