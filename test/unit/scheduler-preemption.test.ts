/**
 * Scheduler specification: preemption. A task that fits nowhere may evict
 * strictly lower-priority allocations: the fewest and lowest-priority that
 * free enough. Equal or higher priority is never evicted.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { placeTasks } from "../../src/manager/scheduler/index.js";
import { GiB, makeAllocation, makeNode, makeSpec, makeTasks, snapshotOf } from "./scheduler-harness.js";

const victims = (r: ReturnType<typeof placeTasks>): string[] => r.preemptions.map((p) => p.victimTaskId).sort();

describe("preemption", () => {
  test("a high-priority task that fits nowhere evicts a lower-priority allocation", () => {
    const snap = snapshotOf([makeNode("n1")], [makeAllocation("batch/0", "n1", { cpu: 6, priority: 100 })]);
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 4, priority: 200 })), snap);
    assert.deepEqual(r.preemptions, [{ victimTaskId: "batch/0", forTaskId: "prod/0", nodeId: "n1" }]);
    assert.equal(r.placements[0]?.nodeId, "n1");
    assert.deepEqual(r.unplaced, []);
  });

  test("no preemption when the task fits somewhere", () => {
    const snap = snapshotOf([makeNode("n1"), makeNode("n2")], [makeAllocation("batch/0", "n1", { cpu: 6, priority: 1 })]);
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 4, priority: 200 })), snap);
    assert.deepEqual(r.preemptions, []);
    assert.equal(r.placements[0]?.nodeId, "n2");
  });

  test("equal priority is never preempted", () => {
    const snap = snapshotOf([makeNode("n1")], [makeAllocation("peer/0", "n1", { cpu: 6, priority: 200 })]);
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 4, priority: 200 })), snap);
    assert.deepEqual(r.preemptions, []);
    assert.deepEqual(r.placements, []);
    assert.deepEqual(r.unplaced[0]?.reasons, { "cpu exhausted": 1 });
  });

  test("equal priority is not preempted even when lower-priority work on the node is preemptible", () => {
    const snap = snapshotOf([makeNode("n1")], [makeAllocation("peer/0", "n1", { cpu: 6, priority: 200 }), makeAllocation("low/0", "n1", { cpu: 2, priority: 10 })]);
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 4, priority: 200 })), snap);
    assert.deepEqual(r.preemptions, []);
    assert.equal(r.unplaced.length, 1);
  });

  test("higher priority is never preempted, even alongside lower-priority work", () => {
    const snap = snapshotOf([makeNode("n1")], [makeAllocation("prod/0", "n1", { cpu: 6, priority: 300 }), makeAllocation("batch/0", "n1", { cpu: 1, priority: 10 })]);
    const r = placeTasks(makeTasks(makeSpec("svc", { cpu: 4, priority: 200 })), snap);
    assert.deepEqual(r.preemptions, []);
    assert.equal(r.unplaced.length, 1);
  });

  test("the node whose victims have the lowest priority is chosen", () => {
    const snap = snapshotOf(
      [makeNode("a"), makeNode("b")],
      [makeAllocation("mid/0", "a", { cpu: 8, priority: 50 }), makeAllocation("low/0", "b", { cpu: 8, priority: 10 })],
    );
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 4, priority: 200 })), snap);
    assert.deepEqual(victims(r), ["low/0"]);
    assert.equal(r.placements[0]?.nodeId, "b");
  });

  test("among equal priorities, the node needing the fewest victims is chosen", () => {
    const snap = snapshotOf(
      [makeNode("a"), makeNode("b")],
      [
        makeAllocation("small/0", "a", { cpu: 2, priority: 10 }),
        makeAllocation("small/1", "a", { cpu: 2, priority: 10 }),
        makeAllocation("small/2", "a", { cpu: 2, priority: 10 }),
        makeAllocation("small/3", "a", { cpu: 2, priority: 10 }),
        makeAllocation("big/0", "b", { cpu: 8, priority: 10 }),
      ],
    );
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 4, priority: 200 })), snap);
    assert.deepEqual(victims(r), ["big/0"]);
  });

  test("on a node, the smallest sufficient lower-priority allocation is evicted", () => {
    const snap = snapshotOf(
      [makeNode("n1")],
      [
        makeAllocation("two/0", "n1", { cpu: 2, memory: 0, disk: 0, priority: 10 }),
        makeAllocation("three/0", "n1", { cpu: 3, memory: 0, disk: 0, priority: 10 }),
        makeAllocation("mid/0", "n1", { cpu: 3, memory: 0, disk: 0, priority: 10 }),
      ],
    );
    // 0 cores free; the task needs 3: one 3-core allocation is enough and the smallest that is.
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 3, memory: 0, disk: 0, priority: 200 })), snap);
    assert.equal(r.preemptions.length, 1);
    assert.ok(["three/0", "mid/0"].includes(r.preemptions[0]?.victimTaskId ?? ""));
  });

  test("lower-priority victims are taken before higher-priority ones on a node", () => {
    const snap = snapshotOf(
      [makeNode("n1")],
      [makeAllocation("p50/0", "n1", { cpu: 4, memory: 0, disk: 0, priority: 50 }), makeAllocation("p10/0", "n1", { cpu: 4, memory: 0, disk: 0, priority: 10 })],
    );
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 4, memory: 0, disk: 0, priority: 200 })), snap);
    assert.deepEqual(victims(r), ["p10/0"]);
  });

  test("victims that turn out unnecessary are not evicted", () => {
    // Greedy by priority takes the two 1-core p5 allocations first, then needs the 4-core p6 one,
    // after which the p5 ones are not needed any more.
    const snap = snapshotOf(
      [makeNode("n1", { cpu: 6 })],
      [
        makeAllocation("p5/0", "n1", { cpu: 1, memory: 0, disk: 0, priority: 5 }),
        makeAllocation("p5/1", "n1", { cpu: 1, memory: 0, disk: 0, priority: 5 }),
        makeAllocation("p6/0", "n1", { cpu: 4, memory: 0, disk: 0, priority: 6 }),
      ],
    );
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 4, memory: 0, disk: 0, priority: 200 })), snap);
    assert.deepEqual(victims(r), ["p6/0"]);
  });

  test("victims are gone for later tasks of the same call", () => {
    const snap = snapshotOf([makeNode("n1")], [makeAllocation("batch/0", "n1", { cpu: 8, memory: 8 * GiB, priority: 10 })]);
    const r = placeTasks(makeTasks(makeSpec("prod", { instances: 2, cpu: 4, priority: 200 })), snap);
    assert.deepEqual(victims(r), ["batch/0"]);
    assert.equal(r.placements.length, 2);
  });

  test("a lower-priority holder of a needed static port is evicted; a higher one blocks the node", () => {
    const low = snapshotOf([makeNode("n1")], [makeAllocation("old/0", "n1", { cpu: 0.5, priority: 10, staticPorts: [443] })]);
    const r = placeTasks(makeTasks(makeSpec("web", { staticPorts: [443], priority: 200 })), low);
    assert.deepEqual(victims(r), ["old/0"]);
    const high = snapshotOf([makeNode("n1")], [makeAllocation("old/0", "n1", { cpu: 0.5, priority: 900, staticPorts: [443] })]);
    const blocked = placeTasks(makeTasks(makeSpec("web", { staticPorts: [443], priority: 200 })), high);
    assert.deepEqual(blocked.preemptions, []);
    assert.deepEqual(blocked.unplaced[0]?.reasons, { "static port 443 in use": 1 });
  });

  test("preemption respects constraints and node state", () => {
    const snap = snapshotOf(
      [makeNode("win", { attributes: { os: "windows" } }), makeNode("drain", { state: "draining" })],
      [makeAllocation("b/0", "win", { cpu: 8, priority: 1 }), makeAllocation("b/1", "drain", { cpu: 8, priority: 1 })],
    );
    const spec = makeSpec("prod", { cpu: 4, priority: 200, constraints: [{ attribute: "os", operator: "=", value: "linux" }] });
    const r = placeTasks(makeTasks(spec), snap);
    assert.deepEqual(r.preemptions, []);
    assert.deepEqual(r.unplaced[0]?.reasons, { "constraint os = linux failed": 1, "node draining": 1 });
  });

  test("when even evicting everything preemptible is not enough, nothing is evicted", () => {
    const snap = snapshotOf([makeNode("n1")], [makeAllocation("b/0", "n1", { cpu: 2, priority: 1 }), makeAllocation("p/0", "n1", { cpu: 6, priority: 500 })]);
    const r = placeTasks(makeTasks(makeSpec("prod", { cpu: 4, priority: 200 })), snap);
    assert.deepEqual(r.preemptions, []);
    assert.equal(r.unplaced.length, 1);
  });
});
