/**
 * Input fuzzing of the HTTP edge (issue 8): a real cell (ZooKeeper, one
 * manager, one agent, as processes) gets thousands of generated malformed
 * requests (test/harness/fuzz-requests.ts), spread over the manager's API and
 * the agent's, 16 at a time. Every one must be answered, with a 4xx and the
 * JSON error envelope carrying a specific message (for task files: the field
 * and line, as the parser test demands). Afterwards the same processes are
 * alive, nothing in the cell changed, and a valid job still runs to the end.
 *
 * The seed is printed; TORCA_FUZZ_SEED=<seed> replays a run. TORCA_FUZZ_COUNT
 * changes the number of requests (default 10,000).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import type { Method } from "got";
import { createHttpClient } from "../../src/common/http.js";
import type { InputIssue } from "../../src/common/errors.js";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { judgeIssues, unclearMessage } from "../harness/fuzz.js";
import { apiCase, type ApiCase, type FuzzTarget } from "../harness/fuzz-requests.js";
import { fuzzSeed } from "../harness/prng.js";

const seed = fuzzSeed();
const count = Number(process.env.TORCA_FUZZ_COUNT ?? 10_000);
const IN_FLIGHT = 16;

const READ_TOKEN = "fuzz-read-token-0123456789abcdef";
const SUBMIT_TOKEN = "fuzz-submit-token-0123456789abcdef";
const BODY_LIMIT = 256 * 1024;
const PACKAGE_LIMIT = 64 * 1024;
/** The agent's fixed body limit (agent/agent.ts). */
const AGENT_BODY_LIMIT = 4 * 1024 * 1024;

/** Reason phrases alone: what a server says when nothing of its own handled the request. */
const BARE_REASONS = /^(Not Found|Bad Request|Method Not Allowed|Unauthorized|Forbidden|Payload Too Large|Not Implemented|Internal Server Error)$/i;

interface Envelope {
  error?: { code?: unknown; message?: unknown; field?: unknown; line?: unknown; column?: unknown; issues?: unknown };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** What is wrong with an answer, or undefined when it is the 4xx the case demands. */
function judgeAnswer(c: ApiCase, status: number, contentType: string | undefined, body: Buffer): string | undefined {
  const text = body.toString("utf8");
  const shown = text.length > 300 ? text.slice(0, 300) + "..." : text;
  if (!c.expect.status.includes(status)) return `status ${status}, expected ${c.expect.status.join(" or ")}: ${shown}`;
  if (!/^application\/json/.test(contentType ?? "")) return `content-type ${contentType ?? "(none)"}, not the JSON envelope: ${shown}`;
  let env: Envelope;
  try {
    env = JSON.parse(text) as Envelope;
  } catch {
    return `not JSON: ${shown}`;
  }
  const err = env.error;
  if (!err || typeof err.code !== "string" || typeof err.message !== "string") return `no {error: {code, message}} envelope: ${shown}`;
  if (c.expect.code !== undefined && err.code !== c.expect.code) return `code ${err.code}, expected ${c.expect.code}: ${err.message}`;
  const input = `${decodeURIComponentSafe(c.path)}\n${c.body?.toString("utf8") ?? ""}`;
  if (err.message.trim().length < 10 || BARE_REASONS.test(err.message.trim()) || unclearMessage(err.message, input)) return `unclear message: ${JSON.stringify(err.message)}`;
  const issues: InputIssue[] = Array.isArray(err.issues)
    ? (err.issues as InputIssue[])
    : [{ field: typeof err.field === "string" ? err.field : "", message: err.message, ...(typeof err.line === "number" ? { line: err.line, column: err.column as number } : {}) }];
  if (c.expect.field !== undefined && !issues.some((i) => i.field === c.expect.field)) return `no issue at ${c.expect.field}: ${err.message}`;
  if (c.expect.message !== undefined && !c.expect.message.test(err.message)) return `message does not match ${String(c.expect.message)}: ${err.message}`;
  const tf = c.expect.taskFile;
  if (tf) return judgeIssues(tf.text, tf.expect, issues, err.message, tf.source);
  return undefined;
}

describe("fuzzing: malformed requests to a manager and an agent", () => {
  let tc: TestCell;
  before(async () => {
    tc = await startTestCell({
      managers: 1,
      agents: 1,
      // This file is about answers, not failover: on a saturated shared machine a 2 s session can
      // expire while the manager is starved of CPU, and a brief election would answer 503.
      sessionTimeout: "10s",
      // Limits small enough that oversized bodies are cheap to send; a read and a submit token for role checks.
      managerExtra: { bodyLimit: "256KiB", packageLimit: "64KiB" },
      env: { TORCA_CLUSTER_TOKENS: `[{name: fuzz-reader, role: read, token: ${READ_TOKEN}}, {name: fuzz-submitter, role: submit, token: ${SUBMIT_TOKEN}}]` },
    });
  });
  after(async () => {
    await tc?.close();
  });

  it(`answers ${count.toLocaleString("en-US")} malformed requests each with a 4xx and a specific message, and changes nothing (seed ${seed})`, { timeout: 600_000 }, async (t) => {
    t.diagnostic(`seed ${seed}: replay with TORCA_FUZZ_SEED=${seed}`);
    const managerUrl = await tc.primaryUrl();
    const agent = tc.cell.daemons.get("agent-1")!;
    const manager = tc.cell.daemons.get("manager-1")!;
    const pids = { manager: manager.process!.pid!, agent: agent.process!.pid! };

    // A running job the requests must leave alone (some name it, or nearly).
    const keeper = await tc.submit(batchJob("fuzz-keeper", ["/bin/sleep", "600"]));
    const kept = (await tc.waitJob(keeper.id, (j) => j.taskList[0]?.state === "running", 60_000, "keeper running")).taskList[0]!;
    const snapshot = async () => ({
      jobs: (await tc.api.get(`${managerUrl}/v1/jobs`).json<{ jobs: { id: string; desired: string }[] }>()).jobs.map((j) => `${j.id}:${j.desired}`).sort(),
      nodes: (await tc.api.get(`${managerUrl}/v1/nodes`).json<{ nodes: { id: string; state: string }[] }>()).nodes.map((n) => `${n.id}:${n.state}`).sort(),
      packages: (await tc.api.get(`${managerUrl}/v1/packages`).json<{ packages: unknown[] }>()).packages.length,
      epoch: (await tc.api.get(`${managerUrl}/v1/leader`).json<{ epoch: number }>()).epoch,
      agentEpoch: (await tc.api.get(`${agent.url}/v1/status`).json<{ epoch: number }>()).epoch,
      agentTasks: (await tc.api.get(`${agent.url}/v1/status`).json<{ tasks: { taskId: string; attempt: number }[] }>()).tasks.map((x) => `${x.taskId}#${x.attempt}`).sort(),
    });
    const before = await snapshot();

    const target: FuzzTarget = {
      jobIds: [keeper.id],
      taskId: kept.id,
      nodeId: agent.id,
      tokens: { admin: tc.cell.token, submit: SUBMIT_TOKEN, read: READ_TOKEN },
      bodyLimit: BODY_LIMIT,
      packageLimit: PACKAGE_LIMIT,
      agentBodyLimit: AGENT_BODY_LIMIT,
    };
    const http = createHttpClient({ retries: 0, followRedirect: false, timeoutMs: 60_000 });
    const byKind = new Map<string, number>();
    const byStatus = new Map<number, number>();
    const failures: string[] = [];
    let failed = 0;
    let slowest = { ms: 0, what: "" };
    const fail = (c: ApiCase, why: string) => {
      failed++;
      if (failures.length < 25) failures.push(`#${c.index} ${c.kind}: ${c.method} ${c.service} ${c.path.slice(0, 120)} (${c.detail.slice(0, 120)})\n    ${why}`);
    };

    const send = async (c: ApiCase) => {
      const base = c.service === "manager" ? managerUrl : agent.url;
      const url = new URL(base + c.path);
      // The path must reach the server as generated: URL parsing removes dot segments and re-encodes some characters.
      if (url.pathname + url.search !== c.path) return fail(c, `generator bug: the path becomes ${url.pathname + url.search} when parsed`);
      const started = performance.now();
      try {
        const res = await http(url, {
          method: c.method as Method,
          headers: c.headers,
          ...(c.body ? { body: c.chunked ? Readable.from([c.body]) : c.body } : {}),
          throwHttpErrors: false,
          responseType: "buffer",
        });
        byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1);
        const problem = judgeAnswer(c, res.statusCode, res.headers["content-type"], res.body);
        if (problem) fail(c, problem);
      } catch (e) {
        fail(c, `no answer: ${(e as Error & { code?: string }).code ?? ""} ${(e as Error).message}`);
      }
      const ms = performance.now() - started;
      if (ms > slowest.ms) slowest = { ms, what: `${c.kind} (#${c.index})` };
    };

    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const c = apiCase(seed, next++, target);
        byKind.set(c.kind, (byKind.get(c.kind) ?? 0) + 1);
        await send(c);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const seconds = (performance.now() - started) / 1000;

    t.diagnostic(`${count} requests in ${seconds.toFixed(1)} s (${(count / seconds).toFixed(0)}/s, ${IN_FLIGHT} in flight); slowest ${slowest.ms.toFixed(0)} ms: ${slowest.what}`);
    t.diagnostic(`statuses: ${[...byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(", ")}`);
    const kinds = [...byKind].sort((a, b) => b[1] - a[1]);
    const families = new Map<string, number>();
    for (const [k, n] of kinds) families.set(k.split(":")[0]!, (families.get(k.split(":")[0]!) ?? 0) + n);
    t.diagnostic(`by family: ${[...families].map(([k, n]) => `${k} ${n}`).join(", ")}`);
    for (const [k, n] of kinds) t.diagnostic(`  ${String(n).padStart(5)}  ${k}`);
    assert.equal(failed, 0, `${failed} of ${count} requests were not answered properly (seed ${seed}); first ones:\n${failures.join("\n")}`);

    // The same processes, and a cell in the state it was in.
    for (const [what, d] of [["manager", manager], ["agent", agent]] as const) {
      assert.equal(d.process!.pid, pids[what], `${what} was restarted`);
      assert.equal(d.process!.exitCode, null, `${what} exited`);
      assert.doesNotThrow(() => process.kill(pids[what], 0), `${what} (pid ${pids[what]}) is gone`);
    }
    assert.deepEqual(await snapshot(), before, "the requests changed the cell");
    const keeperNow = (await tc.job(keeper.id)).taskList[0]!;
    assert.deepEqual([keeperNow.state, keeperNow.attempt, keeperNow.nodeId], [kept.state, kept.attempt, kept.nodeId], "the running job was disturbed");

    // And it still does its work.
    const { id } = await tc.submit(batchJob("fuzz-after", ["/bin/sh", "-c", "echo still here"]));
    const done = await tc.waitJob(id, (j) => j.status === "complete" || j.status === "failed", 60_000, "job finished");
    assert.equal(done.status, "complete");
  });

  it("pins down what it found at the HTTP edge", async () => {
    const managerUrl = await tc.primaryUrl();
    const agent = tc.cell.daemons.get("agent-1")!;
    const http = createHttpClient({ retries: 0, followRedirect: false, token: tc.cell.token });
    const ask = async (method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}) => {
      const res = await http(`${managerUrl}${path}`, { method: method as Method, headers, ...(body !== undefined ? { body } : {}), throwHttpErrors: false });
      const env = JSON.parse(res.body) as { error: { code: string; message: string; field?: string; line?: number } };
      return { status: res.statusCode, ...env.error };
    };
    const keeper = (await tc.job("fuzz-keeper")).taskList[0]!;

    // A drain body of null was a TypeError (500); a non-boolean undo drained the node.
    assert.deepEqual(await ask("POST", `/v1/nodes/${agent.id}/drain`, "null"), { status: 400, code: "invalid_input", message: "Expected object, received null" });
    assert.equal((await ask("POST", `/v1/nodes/${agent.id}/drain`, '{"undo":"yes"}')).field, "undo");
    assert.equal((await ask("POST", `/v1/nodes/${agent.id}/drain?undo=yes`, "")).field, "undo");
    const nodes = await tc.api.get(`${managerUrl}/v1/nodes`).json<{ nodes: { id: string; state: string }[] }>();
    assert.deepEqual(nodes.nodes.map((n) => n.state), ["ready"], "no malformed drain request drained the node");

    // "job/" and "job/0x0" were read as task index 0.
    for (const id of [`${keeper.jobId}/`, `${keeper.jobId}/0x0`, `${keeper.jobId}/ 0`, `${keeper.jobId}/1e0`]) {
      assert.equal((await ask("GET", `/v1/tasks/${encodeURIComponent(id)}`)).status, 404, id);
    }

    // No route, or no such method: the JSON envelope (was Koa's text "Not Found", and 501 for PROPFIND).
    assert.deepEqual(await ask("GET", "/v1/nope"), { status: 404, code: "not_found", message: 'endpoint "GET /v1/nope" not found' });
    assert.deepEqual(await ask("PROPFIND", "/v1/jobs"), { status: 405, code: "method_not_allowed", message: "PROPFIND is not allowed on /v1/jobs (allowed: POST, HEAD, GET)" });

    // Query values outside their set were ignored: every job for a misspelt status, the first of two indexes.
    assert.equal((await ask("GET", "/v1/jobs?status=runing")).field, "status");
    assert.equal((await ask("GET", "/v1/names/web?index=1&index=2")).field, "index");
    assert.equal((await ask("GET", "/v1/events?types=jobs")).field, "types");
    assert.equal((await ask("GET", `/v1/tasks/${encodeURIComponent(keeper.id)}/logs?stream=stdin`)).field, "stream");

    // A Latin-1 byte in an argument became U+FFFD and the job was accepted.
    const latin1 = Buffer.concat([Buffer.from('name: cafe\ntype: batch\ncommand: ["/bin/echo", "caf'), Buffer.from([0xe9]), Buffer.from('"]\n')]);
    assert.deepEqual(await ask("POST", "/v1/jobs", latin1, { "content-type": "application/yaml" }), {
      status: 400, code: "invalid_input", message: "line 3:28: the request body is not valid UTF-8: byte 0xe9 (at offset 50) does not begin a well-formed character", line: 3, column: 28,
    });

    // A package reference ZooKeeper cannot look up ("..") reached it and was answered 503.
    const dots = await ask("POST", "/v1/jobs", 'name: dots\ncommand: ["/bin/true"]\npackage: "webapp@.."\n', { "content-type": "application/yaml" });
    assert.deepEqual([dots.status, dots.field, dots.line], [400, "package", 3]);

    // Identical non-gzip uploads at once: one could delete the blob under another, which then answered 404.
    const junk = Buffer.from("not a tarball");
    const answers = await Promise.all(Array.from({ length: 12 }, () => ask("PUT", "/v1/packages/racy/1.0", junk)));
    assert.deepEqual(new Set(answers.map((a) => `${a.status} ${a.field}`)), new Set(["400 body"]));
  });
});
