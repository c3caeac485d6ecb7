/**
 * One placement round, specified: from the store's view and `now`, what the
 * primary writes, stops and dispatches. No ZooKeeper, no clock.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Job, JobSpec, NodeInfo, TaskInstance } from "../../src/common/types.js";
import { AllocationBuilder } from "../../src/manager/primary/allocations.js";
import { concurrentPlacementRound, placementRound, type RoundView } from "../../src/manager/primary/round.js";
import { SchedulerWorkers } from "../../src/manager/placement/workers.js";
import { makeNode, makeSpec, type SpecOptions } from "./scheduler-harness.js";

const NOW = 5_000_000;

function jobOf(name: string, opts: SpecOptions = {}): Job {
  const spec: JobSpec = makeSpec(name, opts);
  return { id: name, spec, source: "", status: "running", desired: "run", submittedAt: 0, updatedAt: 0 };
}

function task(job: Job, state: TaskInstance["state"], extra: Partial<TaskInstance> = {}): TaskInstance {
  return { id: `${job.id}/0`, jobId: job.id, index: 0, run: 0, desired: "run", state, attempt: 1, restartsOnNode: 0, migrations: 0, createdAt: 0, updatedAt: 0, events: [], ...extra };
}

function viewOf(jobs: Job[], tasks: TaskInstance[]): RoundView {
  return { jobs: new Map(jobs.map((j) => [j.id, j])), tasksWhere: (desired, state) => tasks.filter((t) => t.desired === desired && t.state === state) };
}

function round(jobs: Job[], tasks: TaskInstance[], nodes: NodeInfo[]) {
  return placementRound(viewOf(jobs, tasks), nodes, new AllocationBuilder(), NOW);
}

describe("a placement round", () => {
  test("places at most maxTasks tasks, highest priority first, and says more are due", () => {
    const low = jobOf("low", { priority: 50, cpu: 0.1 });
    const high = jobOf("high", { priority: 200, cpu: 0.1 });
    const tasks = [0, 1, 2].flatMap((i) => [task(low, "pending", { id: `low/${i}`, index: i, attempt: 0 }), task(high, "pending", { id: `high/${i}`, index: i, attempt: 0 })]);
    const d = placementRound(viewOf([low, high], tasks), [makeNode("n1", { cpu: 8 })], new AllocationBuilder(), NOW, { maxTasks: 4 });
    assert.deepEqual(d.dispatches.map((t) => t.id).sort(), ["high/0", "high/1", "high/2", "low/0"]);
    assert.equal(d.more, true);
    const rest = placementRound(viewOf([low, high], tasks.filter((t) => t.id === "low/1" || t.id === "low/2")), [makeNode("n1", { cpu: 8 })], new AllocationBuilder(), NOW, { maxTasks: 4 });
    assert.equal(rest.dispatches.length, 2);
    assert.equal(rest.more, false);
  });

  test("dispatches a due pending task to a node, as a new attempt", () => {
    const web = jobOf("web");
    const d = round([web], [task(web, "pending", { attempt: 0 })], [makeNode("n1")]);
    assert.deepEqual(
      d.dispatches.map((t) => [t.id, t.state, t.nodeId, t.attempt, t.dispatchedAt]),
      [["web/0", "dispatched", "n1", 1, NOW]],
    );
    assert.deepEqual(d.writes, []);
  });

  test("leaves alone tasks still backing off and tasks of jobs that are gone", () => {
    const web = jobOf("web");
    const d = round([web], [task(web, "pending", { notBefore: NOW + 1 }), task(jobOf("gone"), "pending")], [makeNode("n1")]);
    assert.deepEqual(d.dispatches, []);
    assert.deepEqual(d.writes, []);
  });

  test("a task backing off on its node keeps its static port there: another job waits, told which port", () => {
    const flapping = jobOf("flapping", { staticPorts: [18555] });
    const rival = jobOf("rival", { staticPorts: [18555] });
    const tasks = [task(flapping, "pending", { nodeId: "n1", stickyNode: "n1", notBefore: NOW + 500 }), task(rival, "pending", { attempt: 0 })];
    const d = round([flapping, rival], tasks, [makeNode("n1")]);
    assert.deepEqual(d.dispatches, []);
    assert.deepEqual(
      d.writes.map((t) => [t.id, t.reason]),
      [["rival/0", "no node fits: 1 node: static port 18555 in use"]],
    );
    assert.deepEqual(d.unplaced.get("rival/0")?.nodesExhausted, { "port 18555": 1 });
  });

  test("a task backing off keeps its cpu too, and once due it goes back to its own node", () => {
    // Spread prefers the emptier n2: only the restart in place sends it back to n1.
    const flapping = jobOf("flapping", { cpu: 6, placement: { strategy: "spread" } });
    const rival = jobOf("rival", { cpu: 6 });
    const nodes = [makeNode("n1"), makeNode("n2", { cpu: 64 })];
    const waiting = round([flapping, rival], [task(flapping, "pending", { stickyNode: "n1", notBefore: NOW + 1 }), task(rival, "pending")], nodes);
    assert.deepEqual(waiting.dispatches.map((t) => t.nodeId), ["n2"], "the rival does not take the reserved room on n1");
    const due = round([flapping], [task(flapping, "pending", { stickyNode: "n1", notBefore: NOW })], nodes);
    assert.deepEqual(due.dispatches.map((t) => [t.id, t.nodeId]), [["flapping/0", "n1"]]);
  });

  test("a task whose restart node is no longer ready may go anywhere", () => {
    const web = jobOf("web");
    const d = round([web], [task(web, "pending", { stickyNode: "n1" })], [makeNode("n1", { state: "draining" }), makeNode("n2")]);
    assert.deepEqual(d.dispatches.map((t) => t.nodeId), ["n2"]);
  });

  test("a task avoided on every ready node: a service starts over everywhere, a batch task fails with an alert", () => {
    const web = jobOf("web");
    const crunch = jobOf("crunch", { type: "batch" });
    const nodes = [makeNode("n1"), makeNode("n2"), makeNode("n3", { state: "lost" })];
    const d = round([web, crunch], [task(web, "pending", { avoidNodes: ["n1", "n2"] }), task(crunch, "pending", { avoidNodes: ["n1", "n2"] })], nodes);
    const byId = new Map(d.writes.map((t) => [t.id, t]));
    assert.deepEqual([byId.get("web/0")?.state, byId.get("web/0")?.avoidNodes], ["pending", undefined]);
    assert.equal(byId.get("crunch/0")?.state, "failed");
    assert.deepEqual(d.alerts.map((a) => [a.kind, a.task.id]), [["task-failed", "crunch/0"]]);
  });

  test("a task avoiding some nodes is placed on another, and the avoided ones show in its metrics", () => {
    const web = jobOf("web");
    const big = jobOf("big", { cpu: 100 });
    const nodes = [makeNode("n1"), makeNode("n2"), makeNode("n3")];
    const d = round([web, big], [task(web, "pending", { avoidNodes: ["n1", "n2"] }), task(big, "pending", { avoidNodes: ["n1", "n2"] })], nodes);
    assert.deepEqual(d.dispatches.map((t) => t.nodeId), ["n3"]);
    assert.deepEqual(d.unplaced.get("big/0")?.nodesFiltered, { "avoided-nodes": { "avoided after failures": 2 } });
  });

  test("the reason of a waiting task is written only when it changes", () => {
    const big = jobOf("big", { cpu: 100 });
    const tasks = [task(big, "pending")];
    const first = round([big], tasks, [makeNode("n1")]);
    assert.equal(first.writes.length, 1);
    const again = round([big], first.writes, [makeNode("n1")]);
    assert.deepEqual(again.writes, []);
    assert.ok(again.unplaced.has("big/0"), "its metrics are still reported");
  });

  test("preempted tasks are stopped and go back to pending", () => {
    const low = jobOf("low", { cpu: 6, priority: 50 });
    const high = jobOf("high", { cpu: 6, priority: 200 });
    const d = round([low, high], [task(low, "running", { nodeId: "n1" }), task(high, "pending")], [makeNode("n1")]);
    assert.deepEqual(d.stops.map((s) => [s.task.id, s.why]), [["low/0", "preempted by high/0"]]);
    assert.deepEqual(d.writes.map((t) => [t.id, t.state, t.nodeId]), [["low/0", "pending", undefined]]);
    assert.deepEqual(d.dispatches.map((t) => [t.id, t.nodeId]), [["high/0", "n1"]]);
  });
});

describe("a placement round with scheduler workers", () => {
  const workers = new SchedulerWorkers(2);
  after(() => workers.close());

  test("places around the running tasks' reservations, writes reasons for the rest, and dispatches each placed task once", async () => {
    const running = jobOf("steady", { cpu: 2 });
    const jobs = ["a", "b", "c"].map((name) => jobOf(name, { cpu: 2 }));
    const pending = jobs.flatMap((job) => [0, 1].map((index) => task(job, "pending", { id: `${job.id}/${index}`, index, attempt: 0 })));
    // Two 4-core nodes, 2 cores held by the running task: room for three of the six.
    const d = await concurrentPlacementRound(viewOf([running, ...jobs], [task(running, "running", { nodeId: "n1" }), ...pending]), [makeNode("n1", { cpu: 4 }), makeNode("n2", { cpu: 4 })], new AllocationBuilder(), NOW, workers);
    assert.equal(d.dispatches.length, 3);
    assert.equal(new Set(d.dispatches.map((t) => t.id)).size, 3);
    const perNode = new Map<string, number>([["n1", 2]]);
    for (const t of d.dispatches) perNode.set(t.nodeId as string, (perNode.get(t.nodeId as string) ?? 0) + 2);
    assert.ok((perNode.get("n1") ?? 0) <= 4 && (perNode.get("n2") ?? 0) <= 4, JSON.stringify([...perNode]));
    assert.deepEqual(
      d.writes.map((t) => t.reason?.startsWith("no node fits:")),
      [true, true, true],
    );
  });
});
