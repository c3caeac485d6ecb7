import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConflictError } from "../../src/common/errors.js";
import { createLogger } from "../../src/common/logger.js";
import { jobIdOf, type Job, type JobSpec, type TaskInstance, type TaskState } from "../../src/common/types.js";
import { parseWorkflow } from "../../src/manager/workflow/parse.js";
import { workflowSvg } from "../../src/manager/workflow/pages.js";
import { WorkflowRunner } from "../../src/manager/workflow/runner.js";
import type { StoredWorkflow, WorkflowRecords } from "../../src/manager/workflow/store.js";
import { workflowIdOf, type WorkflowRecord } from "../../src/manager/workflow/types.js";

const CHAIN = `workflow: chain
vars: { DAY: monday }
nodes:
  - { name: a, job: { command: [x] } }
  - { name: b, after: [a], pre: [check], job: { command: [x] } }
`;

/**
 * ZooKeeper and the primary's job store in miniature. Every effect is logged
 * in order ("write", "create JOB"), and a "crash" can be injected after a
 * given number of effects, as a primary dying between two of them.
 */
class World {
  versions = new Map<string, StoredWorkflow>();
  jobs = new Map<string, Job>();
  tasks = new Map<string, TaskInstance[]>();
  effects: string[] = [];
  crashAfter = Infinity;
  now = 1_000_000;

  private effect(what: string): void {
    if (this.effects.length >= this.crashAfter) throw new Error("the primary died");
    this.effects.push(what);
  }

  readonly store: WorkflowRecords = {
    list: async () => [...this.versions.values()],
    create: async (record) => {
      this.effect("write");
      const s = { record, version: 0 };
      this.versions.set(workflowIdOf(record.def.namespace, record.def.name), s);
      return s;
    },
    update: async (record, version) => {
      const id = workflowIdOf(record.def.namespace, record.def.name);
      if (this.versions.get(id)?.version !== version) throw new ConflictError("stale");
      this.effect("write");
      const s = { record, version: version + 1 };
      this.versions.set(id, s);
      return s;
    },
    remove: async (id) => {
      this.effect(`remove ${id}`);
      this.versions.delete(id);
    },
  };

  /** A new primary: a runner with nothing cached, over the same state. */
  runner(): WorkflowRunner {
    return new WorkflowRunner({
      store: this.store,
      jobs: { jobs: this.jobs, tasksOf: (id) => this.tasks.get(id) ?? [] },
      createJob: async (spec: JobSpec) => {
        this.effect(`create ${spec.name}`);
        const id = jobIdOf(spec.namespace, spec.name);
        const job: Job = { id, spec, source: "", status: "pending", desired: "run", submittedAt: this.now, updatedAt: this.now };
        this.jobs.set(id, job);
        this.tasks.set(id, []);
        return job;
      },
      killJob: async (id) => this.effect(`kill ${id}`),
      run: (fn) => fn(),
      requestTick: () => undefined,
      now: () => this.now,
      retentionMs: 60_000,
      log: createLogger("test", {}, { level: "silent" }),
    });
  }

  finish(jobId: string, state: TaskState): void {
    const job = this.jobs.get(jobId)!;
    this.tasks.set(jobId, [{ id: `${jobId}/0`, jobId, index: 0, run: 0, desired: "run", state, attempt: 1, restartsOnNode: 0, migrations: 0, createdAt: this.now, updatedAt: this.now, events: [] }]);
    assert.ok(job);
  }

  record(id = "chain"): WorkflowRecord {
    return this.versions.get(id)!.record;
  }
}

describe("the primary's workflow phase", () => {
  test("the record is written before the jobs it names are created", async () => {
    const w = new World();
    await w.runner().submit(parseWorkflow(CHAIN), CHAIN, {});
    assert.deepEqual(w.effects, ["write", "write", "create chain.a"]);
    const a = w.jobs.get("chain.a")!;
    assert.equal(a.spec.env.DAY, "monday");
    assert.equal(a.spec.env.TORCA_WORKFLOW, "chain");
    assert.equal(a.spec.env.TORCA_WORKFLOW_NODE, "a");
    assert.equal(a.spec.env.TORCA_WORKFLOW_ATTEMPT, "1");
    assert.equal(a.spec.env.TORCA_WORKFLOW_RUN, `${w.record().uid}-${w.record().nodes.a!.seq}`);
  });

  test("a primary that dies between the record and the job: its successor creates the job, once", async () => {
    const w = new World();
    w.crashAfter = 2;
    await assert.rejects(w.runner().submit(parseWorkflow(CHAIN), CHAIN, {}), /died/);
    assert.equal(w.record().nodes.a!.state, "running", "the record says a runs");
    assert.equal(w.jobs.size, 0, "but its job was never created");
    w.crashAfter = Infinity;
    const next = w.runner();
    await next.advance();
    await next.advance();
    assert.deepEqual(w.effects, ["write", "write", "create chain.a"]);
  });

  test("a primary that dies after creating a job: its successor adopts it and goes on from there", async () => {
    const w = new World();
    await w.runner().submit(parseWorkflow(CHAIN), CHAIN, {});
    w.finish("chain.a", "completed");
    w.crashAfter = w.effects.length + 1;
    await assert.rejects(w.runner().advance(), /died/);
    assert.equal(w.record().nodes.b!.state, "pre");
    w.crashAfter = Infinity;
    await w.runner().advance();
    await w.runner().advance();
    assert.deepEqual(w.effects, ["write", "write", "create chain.a", "write", "create chain.b.pre"]);
    w.finish("chain.b.pre", "completed");
    await w.runner().advance();
    assert.deepEqual(w.effects.slice(5), ["write", "create chain.b"]);
  });

  test("a job of the same name from an earlier submission is not taken for the current one", async () => {
    const w = new World();
    await w.runner().submit(parseWorkflow(CHAIN), CHAIN, {});
    const stale = w.jobs.get("chain.a")!;
    w.jobs.set("chain.a", { ...stale, spec: { ...stale.spec, env: { ...stale.spec.env, TORCA_WORKFLOW_RUN: "someone-else-1" } } });
    w.finish("chain.a", "completed");
    await w.runner().advance();
    assert.equal(w.record().nodes.a!.state, "running");
    assert.deepEqual(w.effects.slice(3), ["create chain.a"], "the job of this submission is created");
  });

  test("a running workflow of the same name is refused; a finished one is replaced; finished ones expire", async () => {
    const w = new World();
    const r = w.runner();
    await r.submit(parseWorkflow(CHAIN), CHAIN, {});
    await assert.rejects(r.submit(parseWorkflow(CHAIN), CHAIN, {}), /workflow chain is running/);
    const killed = await r.kill("chain");
    assert.equal(killed.state, "killed");
    assert.ok(w.effects.includes("kill chain.a"));
    const again = await r.submit(parseWorkflow(CHAIN), CHAIN, {});
    assert.notEqual(again.uid, killed.uid);
    await r.kill("chain");
    w.now += 60_000;
    await r.advance();
    assert.equal(w.versions.size, 0);
    assert.equal(w.effects[w.effects.length - 1], "remove chain");
  });

  test("a workflow too large for one ZooKeeper node is refused before anything is written", async () => {
    const w = new World();
    const big = "x".repeat(4000);
    const text = `workflow: big\nnodes:\n${Array.from({ length: 300 }, (_, i) => `  - { name: n${i}, job: { command: [x], env: { PAD: ${big} } } }`).join("\n")}\n`;
    await assert.rejects(w.runner().submit(parseWorkflow(text), text, {}), /would take \d+ bytes, over the 786432/);
    assert.deepEqual(w.effects, []);
  });
});

describe("the workflow graph", () => {
  test("is drawn with one box per node coloured by state and one edge per parent", () => {
    const def = parseWorkflow(`workflow: g\nnodes:\n  - { name: a, job: { command: [x] } }\n  - { name: b, after: [a], job: { command: [x] } }\n  - { name: c, after: [a, b], when: any, job: { command: [x] } }\n`);
    const rec: WorkflowRecord = {
      uid: "u", def, source: "", state: "running", desired: "run", submittedAt: 0, updatedAt: 0, seq: 2, resumes: 0,
      nodes: { a: { state: "succeeded", attempt: 1, seq: 1 }, b: { state: "running", attempt: 2, seq: 2, reason: "attempt 1 failed (<job> & \"x\")" }, c: { state: "waiting", attempt: 0, seq: 0 } },
    };
    const svg = workflowSvg(rec);
    assert.equal((svg.match(/<g class="wf-node"/g) ?? []).length, 3);
    assert.equal((svg.match(/<path class="edge"/g) ?? []).length, 3);
    assert.match(svg, /data-node="b" data-state="running"/);
    assert.match(svg, /running · attempt 2/);
    assert.match(svg, /&#60;job&#62; &#38; &#34;x&#34;/, "reasons are escaped");
    assert.doesNotMatch(svg, /<job>/);
    // Layers left to right: a at the left, c (after b) furthest right.
    const x = (n: string) => Number(new RegExp(`data-node="${n}"[^]*?<rect x="(\\d+)"`).exec(svg)![1]);
    assert.ok(x("a") < x("b") && x("b") < x("c"));
  });
});
