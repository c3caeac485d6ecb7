/**
 * The scheduler stack: rules that decide where a task may go (sticky
 * restarts, avoided nodes) are checkers like any other, and every placement,
 * placed or not, says how it was decided.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { placeTasks, SCORER_BINPACK, SCORER_JOB_ANTI_AFFINITY } from "../../src/manager/scheduler/index.js";
import { CHECKERS, SCORERS } from "../../src/manager/scheduler/stack.js";
import { makeAllocation, makeNode, makeSpec, makeTasks, nodeIds, snapshotOf } from "./scheduler-harness.js";

describe("the stack", () => {
  test("lists each rule once, by name", () => {
    const names = [...CHECKERS, ...SCORERS].map((r) => r.name);
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual(
      CHECKERS.map((c) => c.name),
      ["sticky-restart", "node-state", "avoided-nodes", "driver", "constraints", "resources", "reclaimed-resources", "max-per-node", "static-ports", "devices"],
    );
  });
});

describe("restarts in place", () => {
  test("go back to their node even when another scores better", () => {
    const spec = makeSpec("web", { placement: { strategy: "spread" } });
    const nodes = [makeNode("n1"), makeNode("n2", { cpu: 64 })];
    const r = placeTasks([{ ...makeTasks(spec)[0]!, stickyNode: "n1" }], snapshotOf(nodes, [makeAllocation("x/0", "n1", { cpu: 4 })]));
    assert.equal(r.placements[0]?.nodeId, "n1");
    assert.equal(r.placements[0]?.metrics.nodesEvaluated, 1, "only the sticky node is looked at");
    assert.deepEqual(r.placements[0]?.metrics.nodesFiltered, { "sticky-restart": { "restarts in place on n1": 1 } });
  });

  test("still pass the resource and port checks on their node", () => {
    const spec = makeSpec("web", { cpu: 4, staticPorts: [8080] });
    const nodes = [makeNode("n1"), makeNode("n2")];
    const r = placeTasks([{ ...makeTasks(spec)[0]!, stickyNode: "n1" }], snapshotOf(nodes, [makeAllocation("other/0", "n1", { cpu: 1, staticPorts: [8080] })]));
    assert.deepEqual(r.unplaced[0]?.reasons, { "restarts in place on n1": 1, "static port 8080 in use": 1 });
    assert.deepEqual(r.unplaced[0]?.metrics.nodesExhausted, { "port 8080": 1 });
  });
});

describe("avoided nodes", () => {
  test("show in the reasons", () => {
    const spec = makeSpec("web", { cpu: 100 });
    const r = placeTasks([{ ...makeTasks(spec)[0]!, avoidNodes: ["n1", "n2"] }], snapshotOf([makeNode("n1"), makeNode("n2"), makeNode("n3")]));
    assert.equal(r.unplaced[0]?.summary, "2 nodes: avoided after failures; 1 node: cpu exhausted");
    assert.equal(r.unplaced[0]?.everyUsableNodeAvoided, undefined);
  });

  test("covering every ready node is reported: the task failed on every usable node", () => {
    const spec = makeSpec("web");
    const nodes = [makeNode("n1"), makeNode("n2"), makeNode("n3", { state: "draining" })];
    const r = placeTasks([{ ...makeTasks(spec)[0]!, avoidNodes: ["n1", "n2"] }], snapshotOf(nodes));
    assert.equal(r.unplaced[0]?.everyUsableNodeAvoided, true);
    const none = placeTasks([{ ...makeTasks(spec)[0]!, avoidNodes: ["n1"] }], snapshotOf([makeNode("n1", { state: "lost" })]));
    assert.equal(none.unplaced[0]?.everyUsableNodeAvoided, undefined, "with no ready node at all, waiting for one is right");
  });
});

describe("metrics", () => {
  test("a placement lists the nodes evaluated, filtered by checker, exhausted by dimension, and the top 3 candidates", () => {
    const nodes = [
      makeNode("a"),
      makeNode("b", { attributes: { os: "windows" } }),
      makeNode("c", { state: "draining" }),
      makeNode("d", { cpu: 2 }),
      makeNode("e", { cpu: 16 }),
      makeNode("f", { cpu: 32 }),
    ];
    const spec = makeSpec("web", { cpu: 4, constraints: [{ attribute: "os", operator: "=", value: "linux" }] });
    const r = placeTasks(makeTasks(spec), snapshotOf(nodes, [makeAllocation("x/0", "a", { cpu: 2 })]));
    const m = r.placements[0]!.metrics;
    assert.equal(m.nodesEvaluated, 6);
    assert.deepEqual(m.nodesFiltered, { "node-state": { "node draining": 1 }, constraints: { "constraint os = linux failed": 1 } });
    assert.deepEqual(m.nodesExhausted, { cpu: 1 });
    assert.deepEqual(m.candidates.map((c) => c.nodeId), ["a", "e", "f"]);
    assert.ok(m.candidates[0]!.score >= m.candidates[1]!.score && m.candidates[1]!.score >= m.candidates[2]!.score);
    assert.deepEqual(Object.keys(m.candidates[0]!.scores), [SCORER_BINPACK, SCORER_JOB_ANTI_AFFINITY]);
    assert.equal(r.placements[0]!.nodeId, m.candidates[0]!.nodeId);
    assert.deepEqual(r.placements[0]!.scores, m.candidates[0]!.scores, "the placement's scores are its best candidate's");
  });

  test("the scan stops after sampleSize feasible nodes, and says how many it looked at", () => {
    const r = placeTasks(makeTasks(makeSpec("t")), snapshotOf(nodeIds(100).map((id) => makeNode(id))), { sampleSize: 5 });
    assert.equal(r.placements[0]!.metrics.nodesEvaluated, 5);
    assert.equal(r.placements[0]!.metrics.candidates.length, 3);
  });
});
