/**
 * The smallest change that would fit: for a task no node takes, the scheduler
 * works out which change to its request would let it fit somewhere now, and
 * every suggestion is one the same checker chain accepts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { placeTasks, type SmallestChange } from "../../src/manager/scheduler/index.js";
import type { JobSpec } from "../../src/common/types.js";
import { GiB, makeAllocation, makeNode, makeSpec, makeTasks, MiB, snapshotOf } from "./scheduler-harness.js";
import type { ClusterSnapshot } from "../../src/manager/scheduler/index.js";

function changes(spec: JobSpec, snapshot: ClusterSnapshot): SmallestChange[] {
  const r = placeTasks(makeTasks(spec), snapshot, { explain: true });
  assert.equal(r.placements.length, 0, "the task is unplaceable as asked");
  return r.unplaced[0]?.smallestChange ?? [];
}

/** The suggestion applied to the spec really places (on the nodes it names). */
function assertPlacesWith(spec: JobSpec, snapshot: ClusterSnapshot, changed: JobSpec, nodeIds: readonly string[]): void {
  const r = placeTasks(makeTasks(changed), snapshot);
  assert.equal(r.placements.length, 1, `${JSON.stringify(changed.resources)} places`);
  assert.ok(nodeIds.includes(r.placements[0]!.nodeId), `placed on one of ${nodeIds.join(", ")}`);
  assert.notDeepEqual(changed, spec);
}

describe("the smallest change that would fit", () => {
  test("names the node and the lower memory that fits there, rounded down, never up", () => {
    const spec = makeSpec("big", { cpu: 1, memory: 30 * GiB });
    const snapshot = snapshotOf([makeNode("agent-1", { memory: 16 * GiB }), makeNode("agent-3", { memory: 32 * GiB })], [makeAllocation("other/0", "agent-3", { memory: 8.6 * GiB })]);
    const [first] = changes(spec, snapshot);
    assert.equal(first?.text, "fits agent-3 with memory ≤ 23GiB");
    assert.deepEqual(first?.resources, { memory: 23 * GiB });
    assert.deepEqual(first?.nodeIds, ["agent-3"]);
    assertPlacesWith(spec, snapshot, { ...spec, resources: { ...spec.resources, ...first!.resources } }, first!.nodeIds);
  });

  test("lowers every dimension short on the chosen node, and prefers the node needing the smallest relative cut", () => {
    const spec = makeSpec("wide", { cpu: 8, memory: 8 * GiB });
    const snapshot = snapshotOf([makeNode("a", { cpu: 2, memory: 4 * GiB }), makeNode("b", { cpu: 6, memory: 7.5 * GiB })]);
    const [first] = changes(spec, snapshot);
    assert.equal(first?.text, "fits b with cpu ≤ 6 and memory ≤ 7.5GiB");
    assert.equal(first?.cost, 0.25);
  });

  test("a constraint that no node meets: dropping it is offered, with the nodes that would then take the task", () => {
    const spec = makeSpec("win", { constraints: [{ attribute: "os", operator: "=", value: "windows" }] });
    const snapshot = snapshotOf([makeNode("n1"), makeNode("n2"), makeNode("n3", { cpu: 0.5 })]);
    const [first] = changes(spec, snapshot);
    assert.equal(first?.text, "fits 2 nodes without constraint os = windows");
    assert.deepEqual(first?.nodeIds, ["n1", "n2"]);
    assertPlacesWith(spec, snapshot, { ...spec, constraints: [] }, first!.nodeIds);
  });

  test("a rule relaxed and the request lowered together, when neither alone fits", () => {
    const spec = makeSpec("both", { memory: 12 * GiB, constraints: [{ attribute: "zone", operator: "=", value: "b" }] });
    const snapshot = snapshotOf([makeNode("a1", { memory: 8 * GiB, attributes: { zone: "a" } }), makeNode("b1", { memory: 4 * GiB, attributes: { zone: "b" } })]);
    const texts = changes(spec, snapshot).map((c) => c.text);
    assert.deepEqual(texts, ["fits b1 with memory ≤ 4GiB", "fits a1 without constraint zone = b and with memory ≤ 8GiB"]);
  });

  test("a static port taken everywhere: a dynamic port is offered", () => {
    const spec = makeSpec("web", { staticPorts: [8080] });
    const snapshot = snapshotOf([makeNode("n1")], [makeAllocation("old/0", "n1", { staticPorts: [8080] })]);
    const [first] = changes(spec, snapshot);
    assert.equal(first?.text, "fits n1 with dynamic ports instead of 8080");
  });

  test("the job's spread limit reached on every node: the limit that would let one more on is offered", () => {
    const spec = makeSpec("spread", { instances: 3, placement: { strategy: "binpack", maxPerNode: 1 } });
    const snapshot = snapshotOf([makeNode("n1"), makeNode("n2")], [makeAllocation("spread/0", "n1", { jobId: "spread" }), makeAllocation("spread/1", "n2", { jobId: "spread" })]);
    const r = placeTasks(makeTasks(spec, { count: 1, firstIndex: 2 }), snapshot, { explain: true });
    assert.equal(r.unplaced[0]?.smallestChange?.[0]?.text, "fits 2 nodes with placement.maxPerNode 2");
  });

  test("an isolation no agent offers: the other one is offered", () => {
    const spec = makeSpec("c", { isolation: "lxc" });
    const snapshot = snapshotOf([makeNode("p1", { lxc: false })]);
    assert.equal(changes(spec, snapshot)[0]?.text, "fits p1 with isolation process");
  });

  test("nothing is suggested where nothing would fit: no ready node, or only nodes with nothing free", () => {
    assert.deepEqual(changes(makeSpec("x"), snapshotOf([makeNode("d", { state: "draining" })])), []);
    const full = snapshotOf([makeNode("f", { cpu: 1 })], [makeAllocation("o/0", "f", { cpu: 1 })]);
    assert.deepEqual(changes(makeSpec("y"), full), []);
  });

  test("is worked out only when asked: placement rounds do not pay for it", () => {
    const r = placeTasks(makeTasks(makeSpec("big", { memory: 64 * GiB })), snapshotOf([makeNode("n1")]));
    assert.equal(r.unplaced[0]?.smallestChange, undefined);
    const explained = placeTasks(makeTasks(makeSpec("big", { memory: 64 * GiB, instances: 2 })), snapshotOf([makeNode("n1", { memory: 512 * MiB })]), { explain: true });
    assert.deepEqual(
      explained.unplaced.map((u) => u.smallestChange?.[0]?.text),
      ["fits n1 with memory ≤ 512MiB", "fits n1 with memory ≤ 512MiB"],
      "identical instances share the answer",
    );
  });
});
