import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { placeConcurrently, splitByJob } from "../../src/manager/placement/concurrent.js";
import { SchedulerWorkers } from "../../src/manager/placement/workers.js";
import type { Allocation, ClusterSnapshot, Placement } from "../../src/manager/scheduler/index.js";
import { makeAllocation, makeNode, makeSpec, makeTasks, nodeIds, snapshotOf } from "./scheduler-harness.js";

/** Every node's committed cpu (snapshot allocations plus placements), against what it has. */
function assertNoOverCommit(snapshot: ClusterSnapshot, placements: Placement[], cpuOf: (taskId: string) => number, evicted: Set<string>): void {
  const used = new Map<string, number>();
  const add = (nodeId: string, cpu: number): void => void used.set(nodeId, (used.get(nodeId) ?? 0) + cpu);
  for (const a of snapshot.allocations as Allocation[]) if (!evicted.has(a.taskId)) add(a.nodeId, a.resources.cpu);
  for (const p of placements) add(p.nodeId, cpuOf(p.taskId));
  for (const node of snapshot.nodes) assert.ok((used.get(node.id) ?? 0) <= node.allocatable.cpu + 1e-9, `${node.id} holds ${used.get(node.id)} of ${node.allocatable.cpu} cpu`);
}

describe("concurrent placement in scheduler workers", () => {
  const workers = new SchedulerWorkers(2);
  after(() => workers.close());

  test("jobs are split whole among the workers, largest first to the emptiest", () => {
    const tasks = [...makeTasks(makeSpec("a"), { count: 3 }), ...makeTasks(makeSpec("b"), { count: 2 }), ...makeTasks(makeSpec("c"), { count: 2 })];
    assert.deepEqual(
      splitByJob(tasks, 2).map((g) => [...new Set(g.map((t) => t.jobId))]),
      [["a"], ["b", "c"]],
    );
  });

  test("two workers planning for the same small nodes on one snapshot conflict, retry, and no node is over-committed", async () => {
    // Four 4-core nodes: room for 8 two-core tasks. Two jobs of 8 each, one per worker, both see all 16 cores free.
    const snapshot = snapshotOf(nodeIds(4).map((id) => makeNode(id, { cpu: 4 })));
    const tasks = [...makeTasks(makeSpec("x", { cpu: 2 }), { count: 8 }), ...makeTasks(makeSpec("y", { cpu: 2 }), { count: 8 })];
    const r = await placeConcurrently(workers, tasks, snapshot, { seed: 1 });
    assert.ok(r.conflicts > 0, "the second plan to commit conflicts");
    assert.ok(r.attempts >= 2, "conflicting tasks are planned again");
    assert.equal(r.placements.length, 8);
    assert.equal(r.unplaced.length, 8);
    assert.equal(new Set([...r.placements, ...r.unplaced].map((p) => p.taskId)).size, 16, "every task ends placed or unplaced, once");
    assertNoOverCommit(snapshot, r.placements, () => 2, new Set());
  });

  test("with room for both, retried tasks land on the nodes left free", async () => {
    const snapshot = snapshotOf(nodeIds(8).map((id) => makeNode(id, { cpu: 4 })), [makeAllocation("old/0", "n-00000", { cpu: 1 })]);
    const tasks = [...makeTasks(makeSpec("x", { cpu: 2 }), { count: 6 }), ...makeTasks(makeSpec("y", { cpu: 2 }), { count: 6 })];
    const r = await placeConcurrently(workers, tasks, snapshot, { seed: 5 });
    assert.equal(r.placements.length, 12);
    assert.deepEqual(r.unplaced, []);
    assertNoOverCommit(snapshot, r.placements, () => 2, new Set());
  });

  test("many rounds of random jobs on a tight cell never over-commit a node", async () => {
    for (let seed = 0; seed < 5; seed++) {
      const snapshot = snapshotOf(nodeIds(6).map((id) => makeNode(id, { cpu: 8 })));
      const cpu = new Map<string, number>();
      const tasks = Array.from({ length: 6 }, (_, j) => {
        const spec = makeSpec(`j${seed}-${j}`, { cpu: 1 + ((j + seed) % 3) });
        return makeTasks(spec, { count: 5 });
      }).flat();
      for (const t of tasks) cpu.set(t.taskId, t.spec.resources.cpu);
      const r = await placeConcurrently(workers, tasks, snapshot, { seed });
      assertNoOverCommit(snapshot, r.placements, (id) => cpu.get(id) ?? 0, new Set(r.preemptions.map((p) => p.victimTaskId)));
      assert.equal(r.placements.length + r.unplaced.length, tasks.length);
    }
  });
});
