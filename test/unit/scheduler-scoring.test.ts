/**
 * Scheduler specification: scoring. Binpack prefers fuller nodes, spread
 * emptier ones; cached packages earn a bonus; a job avoids piling onto one
 * node; the final score is the mean of all recorded scores; ties go to the
 * smaller node id.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { placeTasks, SCORER_BINPACK, SCORER_JOB_ANTI_AFFINITY, SCORER_PACKAGE_CACHED, SCORER_SPREAD } from "../../src/manager/scheduler/index.js";
import { GiB, makeAllocation, makeNode, makeSpec, makeTasks, snapshotOf } from "./scheduler-harness.js";

const busyAndIdle = () =>
  snapshotOf(
    [makeNode("idle"), makeNode("half"), makeNode("busy")],
    [makeAllocation("bg/0", "half", { cpu: 4, memory: 8 * GiB }), makeAllocation("bg/1", "busy", { cpu: 6, memory: 12 * GiB })],
  );

describe("bin-pack and spread", () => {
  test("bin-pack (the default) puts a task on the fullest node that fits", () => {
    const r = placeTasks(makeTasks(makeSpec("t")), busyAndIdle());
    assert.equal(r.placements[0]?.nodeId, "busy");
    assert.ok(SCORER_BINPACK in (r.placements[0]?.scores ?? {}));
  });

  test("bin-pack skips a full node for the next fullest", () => {
    const r = placeTasks(makeTasks(makeSpec("t", { cpu: 3 })), busyAndIdle());
    assert.equal(r.placements[0]?.nodeId, "half");
  });

  test("spread puts a task on the emptiest node", () => {
    const r = placeTasks(makeTasks(makeSpec("t", { placement: { strategy: "spread" } })), busyAndIdle());
    assert.equal(r.placements[0]?.nodeId, "idle");
    assert.ok(SCORER_SPREAD in (r.placements[0]?.scores ?? {}));
    assert.ok(!(SCORER_BINPACK in (r.placements[0]?.scores ?? {})));
  });

  test("fit scores are ordered by how full the node would be", () => {
    const scoreOn = (nodeId: string, strategy: "binpack" | "spread"): number => {
      const snap = busyAndIdle();
      snap.nodes = snap.nodes.filter((n) => n.id === nodeId);
      const p = placeTasks(makeTasks(makeSpec("t", { placement: { strategy } })), snap).placements[0];
      return p?.scores[strategy] ?? Number.NaN;
    };
    const binpack = ["idle", "half", "busy"].map((id) => scoreOn(id, "binpack"));
    const spread = ["idle", "half", "busy"].map((id) => scoreOn(id, "spread"));
    assert.ok((binpack[0] as number) < (binpack[1] as number) && (binpack[1] as number) < (binpack[2] as number), `binpack ${binpack.join(",")}`);
    assert.ok((spread[0] as number) > (spread[1] as number) && (spread[1] as number) > (spread[2] as number), `spread ${spread.join(",")}`);
    for (const s of [...binpack, ...spread]) assert.ok(s >= 0 && s <= 1);
  });

  test("a node filled exactly to capacity scores the maximum bin-pack fit", () => {
    const r = placeTasks(makeTasks(makeSpec("t", { cpu: 8, memory: 16 * GiB })), snapshotOf([makeNode("n1")]));
    assert.equal(r.placements[0]?.scores[SCORER_BINPACK], 1);
  });
});

describe("cached packages", () => {
  test("a node that caches the task's package wins over an otherwise equal node", () => {
    const nodes = [makeNode("a"), makeNode("b", { cachedPackages: ["sha256:abc"] })];
    const r = placeTasks(makeTasks(makeSpec("t"), { packageDigest: "sha256:abc" }), snapshotOf(nodes));
    assert.equal(r.placements[0]?.nodeId, "b");
    assert.equal(r.placements[0]?.scores[SCORER_PACKAGE_CACHED], 1);
  });

  test("the bonus outweighs a moderate bin-pack advantage", () => {
    const nodes = [makeNode("fuller"), makeNode("cached", { cachedPackages: ["sha256:abc"] })];
    const r = placeTasks(makeTasks(makeSpec("t"), { packageDigest: "sha256:abc" }), snapshotOf(nodes, [makeAllocation("bg/0", "fuller", { cpu: 2, memory: 4 * GiB })]));
    assert.equal(r.placements[0]?.nodeId, "cached");
  });

  test("tasks without a package get no package score", () => {
    const r = placeTasks(makeTasks(makeSpec("t")), snapshotOf([makeNode("b", { cachedPackages: ["sha256:abc"] })]));
    assert.ok(!(SCORER_PACKAGE_CACHED in (r.placements[0]?.scores ?? {})));
  });
});

describe("job anti-affinity", () => {
  test("instances of a job prefer nodes that do not hold the job yet, even under bin-pack", () => {
    const r = placeTasks(makeTasks(makeSpec("w", { instances: 2 })), snapshotOf([makeNode("a"), makeNode("b")]));
    assert.deepEqual(r.placements.map((p) => p.nodeId).sort(), ["a", "b"]);
    for (const p of r.placements) assert.equal(p.scores[SCORER_JOB_ANTI_AFFINITY], 0);
  });

  test("existing instances in the snapshot count too, and the penalty is recorded", () => {
    const snap = snapshotOf([makeNode("a"), makeNode("b")], [makeAllocation("w/0", "a")]);
    const r = placeTasks(makeTasks(makeSpec("w", { instances: 2 }), { count: 1, firstIndex: 1 }), snap);
    assert.equal(r.placements[0]?.nodeId, "b");
    snap.nodes = snap.nodes.filter((n) => n.id === "a");
    const forced = placeTasks(makeTasks(makeSpec("w", { instances: 2 }), { count: 1, firstIndex: 1 }), snap);
    assert.equal(forced.placements[0]?.scores[SCORER_JOB_ANTI_AFFINITY], -0.5);
  });

  test("another job's instances carry no penalty", () => {
    const r = placeTasks(makeTasks(makeSpec("w", { instances: 2 })), snapshotOf([makeNode("a")], [makeAllocation("other/0", "a")]));
    assert.equal(r.placements[0]?.scores[SCORER_JOB_ANTI_AFFINITY], 0);
  });
});

describe("final score", () => {
  test("is the mean of every recorded score", () => {
    const nodes = [makeNode("a", { cachedPackages: ["sha256:p"] })];
    const r = placeTasks(makeTasks(makeSpec("t", { instances: 3 }), { packageDigest: "sha256:p" }), snapshotOf(nodes));
    for (const p of r.placements) {
      const values = Object.values(p.scores);
      assert.equal(values.length, 3);
      assert.ok(Math.abs(p.score - values.reduce((a, b) => a + b, 0) / values.length) < 1e-12);
      assert.ok(p.score >= -1 && p.score <= 1);
    }
  });

  test("ties go to the smaller node id, whatever the node order", () => {
    const nodes = [makeNode("n3"), makeNode("n1"), makeNode("n2")];
    for (const seed of [0, 1, 2, 3]) {
      const r = placeTasks(makeTasks(makeSpec("t")), snapshotOf(nodes), { seed });
      assert.equal(r.placements[0]?.nodeId, "n1");
    }
  });
});
