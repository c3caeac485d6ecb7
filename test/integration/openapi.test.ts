import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ZodTypeAny } from "zod";
import { ErrorEnvelopeSchema } from "../../src/common/schemas/api.js";
import { OPERATIONS, type Method } from "../../src/manager/http/openapi/operations.js";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

/**
 * Real answers of a running cell (two managers, one agent) against the
 * OpenAPI document's answer schemas: each call names the route pattern it
 * exercises, and its answer must parse with the schema documented for that
 * route and status (the error envelope for any documented or undocumented
 * error). A status the document does not list for a route fails too.
 */

/** The documented schema of `method pattern` answering `status`. */
function documentedAnswer(method: Method, pattern: string, status: number): ZodTypeAny {
  const op = OPERATIONS.find((o) => o.method === method && o.path === pattern);
  assert.ok(op, `${method.toUpperCase()} ${pattern} is not in the OpenAPI document`);
  const answer = op.answers.find((a) => a.status === status);
  if (answer?.schema) return answer.schema;
  assert.ok(status >= 400, `${method.toUpperCase()} ${pattern} answered ${status}, which the document does not list (it lists ${op.answers.map((a) => a.status).join(", ")})`);
  return ErrorEnvelopeSchema;
}

describe("answers of a running cell match the OpenAPI document", { timeout: 300_000 }, () => {
  let tc: TestCell;
  const checked = new Set<string>();

  /** Calls the primary, checks the answer against the document and returns it. */
  async function call(method: Method, pattern: string, path: string, opts: { body?: unknown; yaml?: string; expect?: number } = {}): Promise<unknown> {
    const headers: Record<string, string> = { authorization: `Bearer ${tc.cell.token}` };
    let body: string | undefined;
    if (opts.yaml !== undefined) [headers["content-type"], body] = ["application/yaml", opts.yaml];
    else if (opts.body !== undefined) [headers["content-type"], body] = ["application/json", JSON.stringify(opts.body)];
    const res = await fetch(`${await tc.primaryUrl()}${path}`, { method: method.toUpperCase(), headers, ...(body !== undefined ? { body } : {}) });
    const answer = (await res.json()) as unknown;
    if (opts.expect !== undefined) assert.equal(res.status, opts.expect, `${method.toUpperCase()} ${path}: ${JSON.stringify(answer)}`);
    const parsed = documentedAnswer(method, pattern, res.status).safeParse(answer);
    assert.ok(parsed.success, `${method.toUpperCase()} ${path} (${res.status}) does not match the documented answer of ${pattern}:\n${parsed.error?.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n")}\nanswer: ${JSON.stringify(answer).slice(0, 2000)}`);
    checked.add(`${method.toUpperCase()} ${pattern} ${res.status}`);
    return answer;
  }

  before(async () => {
    // A short retention: finished jobs reach the history store within seconds.
    tc = await startTestCell({ managers: 2, agents: 1, managerExtra: { retention: { terminal: "2s" } } });
    await tc.steadyPrimary();
  });

  after(async () => {
    await tc?.close();
  });

  it("jobs, tasks and nodes: submit, plan, list, read, kill", async () => {
    await call("post", "/v1/jobs", "/v1/jobs", { yaml: batchJob("oa-quick", ["/bin/true"]), expect: 201 });
    await call("post", "/v1/jobs", "/v1/jobs", { yaml: batchJob("oa-sleeper", ["/bin/sleep", "300"]), expect: 201 });
    await tc.waitJob("oa-sleeper", (j) => j.taskList.every((t) => t.state === "running"), 60_000, "running");
    // The node lists what runs there: the quick job's exit may be reported after the sleeper's start.
    await tc.waitJob("oa-quick", (j) => j.taskList.every((t) => t.state === "completed"), 60_000, "completed");
    await call("post", "/v1/jobs/plan", "/v1/jobs/plan", { yaml: batchJob("oa-plan", ["/bin/true"], "instances: 2\n"), expect: 200 });
    await call("post", "/v1/jobs/plan", "/v1/jobs/plan", { yaml: batchJob("oa-huge", ["/bin/true"]).replace("cpu: 0.1", "cpu: 512"), expect: 200 });
    await call("get", "/v1/jobs", "/v1/jobs", { expect: 200 });
    await call("get", "/v1/jobs", "/v1/jobs?status=running", { expect: 200 });
    await call("get", "/v1/jobs/:id", "/v1/jobs/oa-sleeper", { expect: 200 });
    await call("get", "/v1/tasks/:id", `/v1/tasks/${encodeURIComponent("oa-sleeper/0")}`, { expect: 200 });
    const nodes = (await call("get", "/v1/nodes", "/v1/nodes", { expect: 200 })) as { nodes: { id: string; tasks: string[] }[] };
    assert.deepEqual(nodes.nodes[0]?.tasks, ["oa-sleeper/0"]);
    await call("get", "/v1/leader", "/v1/leader", { expect: 200 });
    await call("get", "/healthz", "/healthz", { expect: 200 });
    await call("delete", "/v1/jobs/:id", "/v1/jobs/oa-sleeper", { expect: 200 });
  });

  it("errors: unknown job and task, a bad task description, a live job submitted again", async () => {
    await call("get", "/v1/jobs/:id", "/v1/jobs/no-such-job", { expect: 404 });
    await call("get", "/v1/tasks/:id", `/v1/tasks/${encodeURIComponent("no-such-job/0")}`, { expect: 404 });
    await call("post", "/v1/jobs", "/v1/jobs", { yaml: "name: oa-bad\ncommand: 42\nflavour: x\n", expect: 400 });
    await call("post", "/v1/jobs", "/v1/jobs", { yaml: batchJob("oa-live", ["/bin/sleep", "300"]), expect: 201 });
    await call("post", "/v1/jobs", "/v1/jobs", { yaml: batchJob("oa-live", ["/bin/sleep", "300"]), expect: 409 });
    await call("get", "/v1/history", "/v1/history?since=yesterday", { expect: 400 });
    await call("delete", "/v1/jobs/:id", "/v1/jobs/oa-live", { expect: 200 });
  });

  it("tenants: tokens, quotas, the audit log", async () => {
    await call("post", "/v1/tokens", "/v1/tokens", { body: { name: "oa-reader", role: "read", namespaces: ["default"], ttl: "1h" }, expect: 201 });
    await call("get", "/v1/tokens", "/v1/tokens", { expect: 200 });
    await call("delete", "/v1/tokens/:name", "/v1/tokens/oa-reader", { expect: 200 });
    await call("put", "/v1/quotas/:ns", "/v1/quotas/oa", { body: { prod: { cpu: "500m", memory: "256MiB", instances: 4 }, batch: { cpu: 1, memory: "1GiB" } }, expect: 200 });
    await call("get", "/v1/quotas", "/v1/quotas", { expect: 200 });
    await call("get", "/v1/quotas/:ns", "/v1/quotas/oa", { expect: 200 });
    await call("delete", "/v1/quotas/:ns", "/v1/quotas/oa", { expect: 200 });
    await call("put", "/v1/quotas/:ns", "/v1/quotas/oa", { body: { prod: { cpu: "lots" } }, expect: 400 });
    await call("get", "/v1/audit", "/v1/audit?limit=20", { expect: 200 });
    await call("get", "/v1/alerts", "/v1/alerts", { expect: 200 });
    await call("get", "/v1/packages", "/v1/packages", { expect: 200 });
    await call("get", "/v1/names", "/v1/names", { expect: 200 });
  });

  it("history and usage, once the finished job is archived", async () => {
    // The primary opens the history store on first use, which may stall it past a test cell's 2 s session: the
    // wait ends once one primary has answered with the run and still leads, with its store open.
    await until(
      "oa-quick archived, on a primary that still leads",
      async () => {
        const before = await tc.cell.waitForPrimary(30_000);
        const res = await fetch(`${before.url}/v1/history?limit=50`, { headers: { authorization: `Bearer ${tc.cell.token}` } });
        const archived = res.status === 200 && ((await res.json()) as { items: { job: string }[] }).items.some((i) => i.job === "oa-quick");
        return archived && (await tc.cell.waitForPrimary(30_000)).epoch === before.epoch;
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    await call("get", "/v1/history", "/v1/history?limit=10", { expect: 200 });
    await call("get", "/v1/history/:job", "/v1/history/oa-quick", { expect: 200 });
    await call("get", "/v1/history/:job", "/v1/history/never-seen", { expect: 404 });
    await call("get", "/v1/usage", "/v1/usage", { expect: 200 });
    await call("get", "/v1/usage", "/v1/usage?by=node", { expect: 200 });
  });

  it("the answers checked cover submit, jobs, job, tasks, nodes, the leader, history, usage, tokens, quotas and errors", () => {
    for (const want of ["POST /v1/jobs 201", "GET /v1/jobs 200", "GET /v1/jobs/:id 200", "GET /v1/tasks/:id 200", "GET /v1/nodes 200", "GET /v1/leader 200", "GET /v1/history 200", "GET /v1/usage 200", "POST /v1/tokens 201", "GET /v1/quotas/:ns 200", "GET /v1/jobs/:id 404", "POST /v1/jobs 400"]) {
      assert.ok(checked.has(want), `${want} was checked`);
    }
  });
});
