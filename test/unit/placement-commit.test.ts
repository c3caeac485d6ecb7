import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { commitPlan, judgePlan, type Plan } from "../../src/manager/placement/commit.js";
import { CellLedger } from "../../src/manager/placement/ledger.js";
import { placeTasks } from "../../src/manager/scheduler/index.js";
import { makeAllocation, makeNode, makeSpec, makeTasks, snapshotOf } from "./scheduler-harness.js";

/** Two plans made on one snapshot, as two schedulers would. */
function twoPlansOnOneSnapshot(ledger: CellLedger, first: Parameters<typeof placeTasks>[0], second: Parameters<typeof placeTasks>[0]): [Plan, Plan] {
  const { snapshot, basis } = ledger.snapshot();
  const planOf = (tasks: Parameters<typeof placeTasks>[0]): Plan => {
    const r = placeTasks(tasks, snapshot);
    const byId = new Map(tasks.map((t) => [t.taskId, t]));
    return { basis, preemptions: r.preemptions, placements: r.placements.map((p) => ({ ...makeAllocation(p.taskId, p.nodeId, { ...byId.get(p.taskId)?.spec.resources }), staticPorts: byId.get(p.taskId)?.spec.ports.flatMap((x) => (x.static === undefined ? [] : [x.static])) ?? [] })) };
  };
  return [planOf(first), planOf(second)];
}

describe("plan committer", () => {
  test("a plan on unchanged nodes is accepted whole", () => {
    const ledger = new CellLedger(snapshotOf([makeNode("a", { cpu: 4 }), makeNode("b", { cpu: 4 })]));
    const [plan] = twoPlansOnOneSnapshot(ledger, makeTasks(makeSpec("x", { cpu: 2 }), { count: 4 }), []);
    const verdict = judgePlan(ledger, plan);
    assert.deepEqual(verdict, { accepted: [0, 1, 2, 3], rejected: [] });
  });

  test("judging changes nothing; committing binds and bumps the node's generation", () => {
    const ledger = new CellLedger(snapshotOf([makeNode("a", { cpu: 4 })]));
    const [plan] = twoPlansOnOneSnapshot(ledger, makeTasks(makeSpec("x", { cpu: 1 })), []);
    const verdict = judgePlan(ledger, plan);
    assert.equal(ledger.generation[0], 0);
    assert.equal(ledger.freeCpu[0], 4);
    commitPlan(ledger, plan, verdict);
    assert.equal(ledger.generation[0], 1);
    assert.equal(ledger.freeCpu[0], 3);
  });

  test("a second plan on the same snapshot is rejected where its node changed and no longer fits, accepted where it still fits", () => {
    // a and b have 2 cores each; both planners want 2 × 2 cores, one on each node.
    const ledger = new CellLedger(snapshotOf([makeNode("a", { cpu: 2 }), makeNode("b", { cpu: 2 })]));
    const [p1, p2] = twoPlansOnOneSnapshot(ledger, makeTasks(makeSpec("x", { cpu: 2 }), { count: 2 }), makeTasks(makeSpec("y", { cpu: 2 }), { count: 2 }));
    assert.deepEqual(
      p1.placements.map((p) => p.nodeId),
      p2.placements.map((p) => p.nodeId),
    );
    commitPlan(ledger, p1, judgePlan(ledger, p1));
    const verdict = judgePlan(ledger, p2);
    assert.deepEqual(verdict.accepted, []);
    assert.deepEqual(
      verdict.rejected.map((r) => r.why),
      [`node ${p2.placements[0]?.nodeId} changed since the snapshot: cpu no longer fits`, `node ${p2.placements[1]?.nodeId} changed since the snapshot: cpu no longer fits`],
    );

    const roomy = new CellLedger(snapshotOf([makeNode("a", { cpu: 8 })]));
    const [q1, q2] = twoPlansOnOneSnapshot(roomy, makeTasks(makeSpec("x", { cpu: 2 }), { count: 2 }), makeTasks(makeSpec("y", { cpu: 2 }), { count: 3 }));
    commitPlan(roomy, q1, judgePlan(roomy, q1));
    // a changed (4 cores taken), 4 left: two of y's three fit, the third conflicts.
    const partial = judgePlan(roomy, q2);
    assert.deepEqual(partial.accepted, [0, 1]);
    assert.deepEqual(
      partial.rejected.map((r) => r.taskId),
      ["y/2"],
    );
  });

  test("a static port taken since the snapshot is a conflict", () => {
    const ledger = new CellLedger(snapshotOf([makeNode("a", { cpu: 8 })]));
    const [p1, p2] = twoPlansOnOneSnapshot(ledger, makeTasks(makeSpec("x", { staticPorts: [8080] })), makeTasks(makeSpec("y", { staticPorts: [8080] })));
    commitPlan(ledger, p1, judgePlan(ledger, p1));
    assert.deepEqual(
      judgePlan(ledger, p2).rejected.map((r) => r.why),
      ["node a changed since the snapshot: static port no longer fits"],
    );
  });

  test("a preemption planned on a node that changed since is rejected and evicts nothing; on an unchanged node its victims leave", () => {
    const low = makeAllocation("low/0", "a", { cpu: 4, priority: 10 });
    const ledger = new CellLedger(snapshotOf([makeNode("a", { cpu: 4 })], [low]));
    const [p1] = twoPlansOnOneSnapshot(ledger, makeTasks(makeSpec("high", { cpu: 4, priority: 200 })), []);
    assert.deepEqual(
      p1.preemptions.map((v) => v.victimTaskId),
      ["low/0"],
    );
    const stale: Plan = { ...p1, basis: new Uint32Array([7]) };
    assert.deepEqual(
      judgePlan(ledger, stale).rejected.map((r) => r.why),
      ["node a changed since the snapshot its preemption was planned on"],
    );
    commitPlan(ledger, p1, judgePlan(ledger, p1));
    assert.deepEqual(
      ledger.allocations.map((a) => a.taskId),
      ["high/0"],
    );
    assert.equal(ledger.freeCpu[0], 0);
  });

  test("a node that left the cell rejects its placements", () => {
    const ledger = new CellLedger(snapshotOf([makeNode("a")]));
    const plan: Plan = { basis: new Uint32Array(1), placements: [makeAllocation("x/0", "gone")], preemptions: [] };
    assert.deepEqual(judgePlan(ledger, plan).rejected, [{ taskId: "x/0", why: "node gone left the cell" }]);
  });
});
