import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { instanceName } from "../../agent/driver/names.js";
import type { TaskInstance } from "../../src/common/types.js";
import { runTorca } from "../harness/cli.js";
import { startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

type NodeView = { name: string; state: string; attempts: number; job: string | null; reason?: string };
type WorkflowView = { id: string; state: string; resumes: number; nodeList: NodeView[] };

/** A node's inline job: a process task that runs `script` under sh. */
const node = (script: string) => `{ type: batch, isolation: process, resources: { cpu: 0.1, memory: 32MiB }, command: ["/bin/sh", "-c", ${JSON.stringify(script)}] }`;

describe("workflows on a real cell", () => {
  let c: TestCell;
  let dir: string;
  /** Files the tasks write (in the shared /tmp: the tasks' users cannot enter a private test directory). */
  const prefix = join(tmpdir(), `torca-wf-${process.pid}-`);
  let env: Record<string, string>;

  before(async () => {
    c = await startTestCell({ managers: 2, agents: 1 });
    dir = mkdtempSync(join(tmpdir(), "torca-wf-files-"));
    env = { TORCA_MANAGER: c.cell.managerUrls.join(","), TORCA_TOKEN: c.cell.token };
  });
  after(async () => {
    await c?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const f of readdirSync(tmpdir())) if (join(tmpdir(), f).startsWith(prefix)) rmSync(join(tmpdir(), f), { force: true });
  });

  const torca = async (...args: string[]) => {
    const r = await runTorca(["--json", ...args], env);
    assert.equal(r.code, 0, `torca ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout) as unknown;
  };
  const status = async (id: string) => (await c.api.get(`${await c.primaryUrl()}/v1/workflows/${encodeURIComponent(id)}`).json<WorkflowView>());
  const waitWorkflow = (id: string, pred: (w: WorkflowView) => boolean, what: string, timeoutMs = 90_000) => {
    let last: WorkflowView | undefined;
    return until(`workflow ${id}: ${what}`, async () => pred((last = await status(id))) && last, { timeoutMs, intervalMs: 200, show: () => last?.nodeList });
  };
  const taskOf = async (jobId: string): Promise<TaskInstance> => {
    const j = await c.job(jobId);
    assert.equal(j.taskList.length, 1);
    return j.taskList[0]!;
  };
  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  test("a diamond (a → b, a → c, b + c → d) runs in order, with a job from a task file and vars as environment", async () => {
    mkdirSync(join(dir, "jobs"), { recursive: true });
    write("jobs/b.yaml", `type: batch\nisolation: process\nresources: { cpu: 0.1, memory: 32MiB }\ncommand: ["/bin/sh", "-c", "test \\"$GREETING\\" = hello && sleep 1"]\n`);
    const file = write(
      "diamond.yaml",
      `workflow: diamond
vars: { GREETING: hello }
nodes:
  - { name: a, job: ${node("sleep 1")} }
  - { name: b, after: [a], job: jobs/b.yaml }
  - { name: c, after: [a], job: ${node('test "$GREETING" = hello && sleep 1')} }
  - { name: d, after: [b, c], job: ${node("true")} }
`,
    );
    const submitted = (await torca("workflow", "submit", file)) as { id: string };
    assert.equal(submitted.id, "diamond");
    const w = await waitWorkflow("diamond", (x) => x.state !== "running", "finished");
    assert.equal(w.state, "succeeded", JSON.stringify(w.nodeList));
    assert.deepEqual(w.nodeList.map((n) => [n.name, n.state, n.attempts, n.job]), [["a", "succeeded", 1, "diamond.a"], ["b", "succeeded", 1, "diamond.b"], ["c", "succeeded", 1, "diamond.c"], ["d", "succeeded", 1, "diamond.d"]]);
    // Each node's job is submitted only once its parents' tasks have finished (a task that exits before
    // its first report has no startedAt, so submission times are compared).
    const [a, b, cc, d] = await Promise.all(["a", "b", "c", "d"].map((n) => c.job(`diamond.${n}`)));
    const finished = (j: typeof a) => j!.taskList[0]!.finishedAt!;
    assert.ok(finished(a) <= b!.submittedAt && finished(a) <= cc!.submittedAt, "b and c were submitted after a finished");
    assert.ok(d!.submittedAt >= Math.max(finished(b), finished(cc)), "d was submitted after both b and c finished");
    assert.ok(Math.abs(b!.submittedAt - cc!.submittedAt) < 2000, "b and c were submitted together");
    const listed = (await torca("workflow", "list")) as { id: string; state: string }[];
    assert.ok(listed.some((x) => x.id === "diamond" && x.state === "succeeded"));
  });

  test("the example diamond runs to success: a task file, PRE before the job, POST told the job's status, when: any", async () => {
    const example = new URL("../../../config/examples/workflows/diamond.yaml", import.meta.url).pathname;
    await torca("workflow", "submit", example);
    const w = await waitWorkflow("diamond", (x) => x.state !== "running", "finished");
    assert.equal(w.state, "succeeded", JSON.stringify(w.nodeList));
    assert.deepEqual(w.nodeList.map((n) => [n.name, n.state]), [["fetch", "succeeded"], ["left", "succeeded"], ["right", "succeeded"], ["merge", "succeeded"], ["cleanup", "succeeded"]]);
    const right = await c.job("diamond.right");
    const pre = await c.job("diamond.right.pre");
    // Submission times: a task that exits before its first report is never seen running and has no startedAt.
    assert.ok(pre.taskList[0]!.finishedAt! <= right.submittedAt, "the job was submitted after PRE finished");
    const post = await c.job("diamond.merge.post");
    assert.equal(post.spec.env.TORCA_JOB_STATUS, "complete");
    assert.ok((await c.job("diamond.merge")).taskList[0]!.finishedAt! <= post.submittedAt, "POST was submitted after the job finished");
  });

  test("the CLI refuses an invalid workflow before sending it, naming the node and the line", async () => {
    const file = write("cycle.yaml", `workflow: loop\nnodes:\n  - { name: a, after: [b], job: ${node("true")} }\n  - { name: b, after: [a], job: ${node("true")} }\n  - { name: c, after: [x], job: ${node("true")} }\n`);
    const r = await runTorca(["workflow", "submit", file], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cycle\.yaml:\d+:\d+: nodes\[\d\]\.after: node "[ab]" is in a cycle/);
    assert.match(r.stderr, /cycle\.yaml:5:\d+: nodes\[2\]\.after\[0\]: node "c" runs after "x", which is not a node of this workflow/);
  });

  test("a node failing with its retries exhausted stops its descendants; resume after the fix runs only the rest", async () => {
    const marker = `${prefix}fixed`;
    const file = write(
      "fragile.yaml",
      `workflow: fragile
nodes:
  - { name: prepare, job: ${node("true")} }
  - { name: flaky, after: [prepare], retry: 1, job: ${node(`test -e ${marker}`)} }
  - { name: report, after: [flaky], job: ${node("true")} }
  - { name: publish, after: [report], job: ${node("true")} }
  - { name: cleanup, after: [flaky], when: any, job: ${node("true")} }
`,
    );
    await torca("workflow", "submit", file);
    const failed = await waitWorkflow("fragile", (x) => x.state !== "running", "finished");
    assert.equal(failed.state, "failed");
    const states = Object.fromEntries(failed.nodeList.map((n) => [n.name, [n.state, n.attempts]]));
    assert.deepEqual(states, { prepare: ["succeeded", 1], flaky: ["failed", 2], report: ["skipped", 0], publish: ["skipped", 0], cleanup: ["succeeded", 1] });
    assert.match(failed.nodeList.find((n) => n.name === "report")!.reason!, /not run: parent flaky failed/);
    const prepareBefore = await c.job("fragile.prepare");

    writeFileSync(marker, "");
    const resumed = (await torca("workflow", "resume", "fragile")) as WorkflowView;
    assert.equal(resumed.resumes, 1);
    const done = await waitWorkflow("fragile", (x) => x.state !== "running", "finished after the resume");
    assert.equal(done.state, "succeeded", JSON.stringify(done.nodeList));
    assert.deepEqual(Object.fromEntries(done.nodeList.map((n) => [n.name, n.state])), { prepare: "succeeded", flaky: "succeeded", report: "succeeded", publish: "succeeded", cleanup: "succeeded" });
    const prepareAfter = await c.job("fragile.prepare");
    assert.equal(prepareAfter.submittedAt, prepareBefore.submittedAt, "the node that had succeeded was not submitted again");
    assert.equal(prepareAfter.taskList[0]!.attempt, 1);
    assert.equal((await c.job("fragile.cleanup")).submittedAt < (await c.job("fragile.report")).submittedAt, true, "cleanup (when: any) had run before and was kept");
  });

  test("a token limited to one namespace submits there, and sees and acts on that namespace's workflows only", async () => {
    const created = (await torca("token", "create", "--name", "wf-team", "--namespace", "team-wf", "--role", "submit")) as { token: string };
    const file = write("team.yaml", `workflow: teamwork\nnodes:\n  - { name: only, job: ${node("true")} }\n`);
    const r = await runTorca(["--json", "workflow", "submit", file], { ...env, TORCA_TOKEN: created.token });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { id: string }).id, "team-wf:teamwork", "a file without namespace: lands in the token's one namespace");
    await waitWorkflow("team-wf:teamwork", (x) => x.state === "succeeded", "succeeded");
    assert.equal((await c.job("team-wf:teamwork.only")).spec.namespace, "team-wf");
    const list = await runTorca(["--json", "workflow", "list"], { ...env, TORCA_TOKEN: created.token });
    assert.deepEqual((JSON.parse(list.stdout) as { id: string }[]).map((w) => w.id), ["team-wf:teamwork"]);
    for (const args of [["status", "diamond"], ["kill", "diamond"], ["resume", "diamond"]]) {
      const other = await runTorca(["workflow", ...args], { ...env, TORCA_TOKEN: created.token });
      assert.notEqual(other.code, 0);
      assert.match(other.stderr, /lacks (read|submit) on namespace "default"/, `workflow ${args.join(" ")}`);
    }
  });

  test("kill stops the running node's job and marks the rest not run", async () => {
    const file = write("slow.yaml", `workflow: slow\nnodes:\n  - { name: wait, job: ${node("sleep 60")} }\n  - { name: after, after: [wait], job: ${node("true")} }\n`);
    await torca("workflow", "submit", file);
    await until("the first node's task runs", async () => (await c.job("slow.wait").catch(() => undefined))?.taskList[0]?.state === "running", { timeoutMs: 60_000 });
    const killed = (await torca("workflow", "kill", "slow")) as WorkflowView;
    assert.equal(killed.state, "killed");
    assert.deepEqual(killed.nodeList.map((n) => [n.name, n.state]), [["wait", "killed"], ["after", "killed"]]);
    await c.waitJob("slow.wait", (j) => j.status === "dead", 30_000, "dead");
  });

  test("a primary killed in the middle of a workflow loses nothing and runs nothing twice", async () => {
    const runs = `${prefix}runs-`;
    const script = (seconds: number) => `mktemp ${runs}$TORCA_WORKFLOW_NODE.XXXXXX >/dev/null && sleep ${seconds}`;
    const file = write(
      "chain.yaml",
      `workflow: chain
throttle: 2
nodes:
  - { name: one, job: ${node(script(1))} }
  - { name: two, after: [one], job: ${node(script(3))} }
  - { name: three, after: [one], job: ${node(script(3))} }
  - { name: four, after: [two, three], job: ${node(script(1))} }
  - { name: five, after: [four], job: ${node(script(1))} }
`,
    );
    const { primary: p } = await c.steadyPrimary();
    await torca("workflow", "submit", file);
    await waitWorkflow("chain", (x) => x.nodeList.find((n) => n.name === "two")!.state === "running", "node two running");
    const victim = c.cell.managerIdAt(p.url);
    await c.cell.stopDaemon(victim, "SIGKILL");
    const next = await until("a new primary", async () => {
      const l = await c.cell.waitForPrimary();
      return l.url !== p.url && l;
    });
    c.cell.startDaemon(victim);
    assert.ok(next.epoch > p.epoch);
    const w = await waitWorkflow("chain", (x) => x.state !== "running", "finished after the failover");
    assert.equal(w.state, "succeeded", JSON.stringify(w.nodeList));
    const tasksDir = join(c.cell.dir, "agent-1", "tasks");
    for (const n of w.nodeList) {
      assert.equal(n.attempts, 1, `${n.name} ran one attempt`);
      const started = readdirSync(tmpdir()).filter((f) => f.startsWith(`${runs.slice(tmpdir().length + 1)}${n.name}.`));
      assert.equal(started.length, 1, `${n.name} ran ${started.length} times`);
      const t = await taskOf(n.job!);
      const attempts = Array.from({ length: t.attempt }, (_, a) => a + 1).filter((a) => existsSync(join(tasksDir, instanceName(t.id, a))));
      assert.equal(attempts.length, 1, `${t.id} was started once`);
    }
  });
});
