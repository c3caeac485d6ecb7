import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decide, expiredWorkflows, newRecord, resumed, type Decision, type Observation } from "../../src/manager/workflow/decide.js";
import { parseWorkflow } from "../../src/manager/workflow/parse.js";
import type { WorkflowRecord } from "../../src/manager/workflow/types.js";

const T0 = 1_000_000;

function recordOf(yaml: string): WorkflowRecord {
  return newRecord(parseWorkflow(yaml), yaml, "uid1", T0);
}

const DIAMOND = `workflow: diamond
nodes:
  - { name: a, job: { command: [x] } }
  - { name: b, after: [a], job: { command: [x] } }
  - { name: c, after: [a], job: { command: [x] } }
  - { name: d, after: [b, c], job: { command: [x] } }
`;

/**
 * A cell in miniature: the jobs the decisions submitted, by node and
 * submission number, each active until the test ends it. Decisions are
 * applied as the primary applies them: the record first, then the jobs.
 */
class Sim {
  rec: WorkflowRecord;
  jobs = new Map<string, Observation>();
  submitted: string[] = [];
  killed: string[] = [];
  now = T0;
  constructor(rec: WorkflowRecord) {
    this.rec = rec;
  }
  observed(): Record<string, Observation> {
    return Object.fromEntries(this.jobs);
  }
  step(): Decision {
    this.now += 1000;
    const d = decide(this.rec, this.observed(), this.now);
    this.rec = d.record;
    for (const s of d.submit) {
      this.jobs.set(s.node, { seq: s.seq, status: "active" });
      this.submitted.push(`${s.job}#${s.attempt}`);
    }
    this.killed.push(...d.kill);
    return d;
  }
  /** The job of the node's current phase ends; then a decision. */
  end(node: string, status: "complete" | "failed"): Decision {
    const j = this.jobs.get(node);
    assert.ok(j && j.status === "active", `${node} has an active job`);
    this.jobs.set(node, { ...j, status });
    return this.step();
  }
  state(node: string): string {
    return this.rec.nodes[node]!.state;
  }
  states(): Record<string, string> {
    return Object.fromEntries(Object.entries(this.rec.nodes).map(([k, v]) => [k, v.state]));
  }
}

describe("workflow decisions", () => {
  test("a diamond runs a, then b and c together, then d, and succeeds", () => {
    const s = new Sim(recordOf(DIAMOND));
    const first = s.step();
    assert.deepEqual(first.submit.map((x) => x.job), ["diamond.a"]);
    assert.ok(first.changed);
    assert.deepEqual(s.states(), { a: "running", b: "waiting", c: "waiting", d: "waiting" });
    assert.deepEqual(s.end("a", "complete").submit.map((x) => x.job), ["diamond.b", "diamond.c"]);
    assert.deepEqual(s.end("b", "complete").submit, [], "d waits for c");
    assert.equal(s.state("d"), "waiting");
    assert.deepEqual(s.end("c", "complete").submit.map((x) => x.job), ["diamond.d"]);
    s.end("d", "complete");
    assert.equal(s.rec.state, "succeeded");
    assert.equal(s.rec.finishedAt, s.now);
    assert.deepEqual(s.submitted, ["diamond.a#1", "diamond.b#1", "diamond.c#1", "diamond.d#1"]);
  });

  test("nothing changes while jobs run: the record is not rewritten and nothing is submitted twice", () => {
    const s = new Sim(recordOf(DIAMOND));
    s.step();
    const again = s.step();
    assert.equal(again.changed, false);
    assert.deepEqual(again.submit, []);
  });

  test("a recorded submission whose job does not exist (the primary died in between) is submitted again, once", () => {
    const rec = decide(recordOf(DIAMOND), {}, T0 + 1).record;
    assert.equal(rec.nodes.a!.state, "running");
    // The next primary sees the record but no job of that submission.
    const d = decide(rec, {}, T0 + 2);
    assert.deepEqual(d.submit.map((x) => [x.job, x.seq]), [["diamond.a", rec.nodes.a!.seq]]);
    assert.equal(d.changed, false, "the record already says what to run");
    // A job of an earlier submission of the same name is not this one.
    assert.equal(decide(rec, { a: { seq: rec.nodes.a!.seq - 1, status: "complete" } }, T0 + 3).submit.length, 1);
    // Once it exists, it is not submitted again.
    assert.deepEqual(decide(rec, { a: { seq: rec.nodes.a!.seq, status: "active" } }, T0 + 3).submit, []);
  });

  test("a failing node is retried as often as retry says, then fails and stops its descendants", () => {
    const s = new Sim(recordOf(`workflow: w
nodes:
  - { name: a, job: { command: [x] } }
  - { name: b, after: [a], retry: 2, job: { command: [x] } }
  - { name: c, after: [b], job: { command: [x] } }
  - { name: d, after: [c], job: { command: [x] } }
  - { name: e, after: [a], job: { command: [x] } }
`));
    s.step();
    s.end("a", "complete");
    s.end("b", "failed");
    assert.equal(s.state("b"), "running");
    assert.equal(s.rec.nodes.b!.attempt, 2);
    assert.match(s.rec.nodes.b!.reason!, /attempt 1 failed \(job failed\); retrying/);
    s.end("b", "failed");
    s.end("b", "failed");
    assert.equal(s.state("b"), "failed");
    assert.match(s.rec.nodes.b!.reason!, /after 3 attempts/);
    assert.deepEqual([s.state("c"), s.state("d")], ["skipped", "skipped"]);
    assert.match(s.rec.nodes.c!.reason!, /not run: parent b failed/);
    assert.match(s.rec.nodes.d!.reason!, /not run: parent c did not run/);
    assert.equal(s.rec.state, "running", "e still runs");
    s.end("e", "complete");
    assert.equal(s.rec.state, "failed");
    assert.deepEqual(s.submitted, ["w.a#1", "w.b#1", "w.e#1", "w.b#2", "w.b#3"]);
  });

  test("when: any runs after its parents however they ended; when: failed only after they failed", () => {
    const s = new Sim(recordOf(`workflow: w
nodes:
  - { name: a, job: { command: [x] } }
  - { name: cleanup, after: [a], when: any, job: { command: [x] } }
  - { name: alert, after: [a], when: failed, job: { command: [x] } }
  - { name: next, after: [a], job: { command: [x] } }
`));
    s.step();
    s.end("a", "failed");
    assert.deepEqual(s.states(), { a: "failed", cleanup: "running", alert: "running", next: "skipped" });
    s.end("cleanup", "complete");
    s.end("alert", "complete");
    assert.equal(s.rec.state, "failed", "a workflow with a failed node fails");

    const ok = new Sim(recordOf(`workflow: w
nodes:
  - { name: a, job: { command: [x] } }
  - { name: alert, after: [a], when: failed, job: { command: [x] } }
`));
    ok.step();
    ok.end("a", "complete");
    assert.equal(ok.state("alert"), "skipped");
    assert.match(ok.rec.nodes.alert!.reason!, /when: failed, and parent a succeeded/);
    assert.equal(ok.rec.state, "succeeded");
  });

  test("PRE runs before the job and its failure fails the attempt; POST's exit decides the outcome", () => {
    const s = new Sim(recordOf(`workflow: w
nodes:
  - { name: a, retry: 1, pre: [check], post: [verify], job: { command: [x] } }
`));
    assert.deepEqual(s.step().submit.map((x) => [x.job, x.phase]), [["w.a.pre", "pre"]]);
    assert.equal(s.state("a"), "pre");
    assert.deepEqual(s.end("a", "failed").submit.map((x) => [x.job, x.attempt]), [["w.a.pre", 2]], "a failed PRE retries the node from PRE");
    assert.match(s.rec.nodes.a!.reason!, /PRE failed/);
    assert.deepEqual(s.end("a", "complete").submit.map((x) => x.job), ["w.a"]);
    const post = s.end("a", "failed");
    assert.deepEqual(post.submit.map((x) => x.job), ["w.a.post"], "POST runs whatever the job's outcome");
    assert.equal(s.rec.nodes.a!.jobStatus, "failed", "and is told it");
    s.end("a", "complete");
    assert.equal(s.state("a"), "succeeded", "POST's success makes the node succeed");
    assert.equal(s.rec.state, "succeeded");
  });

  test("a POST that fails fails the attempt", () => {
    const s = new Sim(recordOf(`workflow: w
nodes:
  - { name: a, post: [verify], job: { command: [x] } }
`));
    s.step();
    s.end("a", "complete");
    s.end("a", "failed");
    assert.equal(s.state("a"), "failed");
    assert.match(s.rec.nodes.a!.reason!, /POST failed/);
  });

  test("the throttle bounds the nodes active at once", () => {
    const s = new Sim(recordOf(`workflow: w
throttle: 2
nodes:
  - { name: a, job: { command: [x] } }
  - { name: b, job: { command: [x] } }
  - { name: c, job: { command: [x] } }
  - { name: d, after: [a], job: { command: [x] } }
`));
    assert.deepEqual(s.step().submit.map((x) => x.node), ["a", "b"]);
    assert.match(s.rec.nodes.c!.reason!, /throttled: 2 of at most 2/);
    assert.deepEqual(s.end("a", "complete").submit.map((x) => x.node), ["c"], "c was waiting longer than d (file order within a layer)");
    assert.deepEqual(s.end("b", "complete").submit.map((x) => x.node), ["d"]);
    assert.equal(s.rec.nodes.c!.reason, undefined);
  });

  test("kill kills the active nodes' jobs and marks the rest not run", () => {
    const s = new Sim(recordOf(DIAMOND));
    s.step();
    s.end("a", "complete");
    s.rec = { ...s.rec, desired: "stop" };
    const d = s.step();
    assert.deepEqual(d.kill, ["diamond.b", "diamond.c"]);
    assert.deepEqual(s.states(), { a: "succeeded", b: "killed", c: "killed", d: "killed" });
    assert.equal(s.rec.state, "killed");
    assert.deepEqual(s.step().submit, [], "a finished workflow does nothing more");
  });

  test("resume reruns only what did not succeed, and its jobs are new submissions", () => {
    const s = new Sim(recordOf(DIAMOND));
    s.step();
    s.end("a", "complete");
    s.end("b", "complete");
    s.end("c", "failed");
    assert.deepEqual(s.states(), { a: "succeeded", b: "succeeded", c: "failed", d: "skipped" });
    assert.equal(s.rec.state, "failed");
    const seqBefore = s.rec.nodes.c!.seq;
    const r = resumed(s.rec, s.now);
    assert.ok(typeof r !== "string");
    s.rec = r;
    assert.equal(s.rec.resumes, 1);
    assert.equal(s.rec.finishedAt, undefined);
    const d = s.step();
    assert.deepEqual(d.submit.map((x) => [x.job, x.attempt]), [["diamond.c", 1]]);
    assert.ok(d.submit[0]!.seq > seqBefore, "the failed job of before the resume is not taken for the new one");
    s.end("c", "complete");
    s.end("d", "complete");
    assert.equal(s.rec.state, "succeeded");
    assert.deepEqual(s.submitted, ["diamond.a#1", "diamond.b#1", "diamond.c#1", "diamond.c#1", "diamond.d#1"]);
    assert.match(resumed(s.rec, s.now) as string, /nothing to resume/);
    assert.match(resumed(recordOf(DIAMOND), s.now) as string, /still running/);
  });

  test("finished workflows expire after the retention window; running ones never", () => {
    const done = { ...recordOf(DIAMOND), state: "succeeded" as const, finishedAt: T0 };
    const running = recordOf(DIAMOND);
    assert.deepEqual(expiredWorkflows([done, running], T0 + 999, 1000), []);
    assert.deepEqual(expiredWorkflows([done, running], T0 + 1000, 1000), [done]);
  });
});
