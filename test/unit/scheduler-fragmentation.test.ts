import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { JobSpec } from "../../src/common/types.js";
import { placeTasks, SCORER_BINPACK, SCORER_FRAGMENTATION, SCORER_SPREAD } from "../../src/manager/scheduler/index.js";
import { GiB, makeAllocation, makeNode, makeSpec, makeTasks, snapshotOf } from "./scheduler-harness.js";

function strategyless(name: string, opts: Parameters<typeof makeSpec>[1] = {}): JobSpec {
  return { ...makeSpec(name, opts), placement: {} };
}

describe("the fragmentation strategy", () => {
  // Two nodes of 8 cores and 64 GiB. "cpu-left" has 6 cores and 8 GiB free (memory nearly gone),
  // "balanced" has 4 cores and 32 GiB free. The cell's typical task is 1 core and 8 GiB (bound below).
  const nodes = [makeNode("balanced", { cpu: 8, memory: 64 * GiB }), makeNode("cpu-left", { cpu: 8, memory: 64 * GiB })];
  const bound = [
    ...Array.from({ length: 4 }, (_, i) => makeAllocation(`typical/${i}`, "balanced", { cpu: 1, memory: 8 * GiB })),
    ...Array.from({ length: 2 }, (_, i) => makeAllocation(`typical/${4 + i}`, "cpu-left", { cpu: 1, memory: 8 * GiB })),
    makeAllocation("memory-hog/0", "cpu-left", { cpu: 0, memory: 40 * GiB }),
  ];

  test("puts a cpu-heavy task on the node whose cpu would otherwise be stranded, scoring in [-1, 1]", () => {
    const cpuHeavy = (strategy: "binpack" | "fragmentation") => makeSpec("crunch", { cpu: 2, memory: 1 * GiB, placement: { strategy } });
    const frag = placeTasks(makeTasks(cpuHeavy("fragmentation")), snapshotOf(nodes, bound)).placements[0];
    assert.equal(frag?.nodeId, "cpu-left");
    assert.ok(frag !== undefined && SCORER_FRAGMENTATION in frag.scores && !(SCORER_BINPACK in frag.scores));
    // The scores are in [-1, 1]; the stranded-cpu node scores higher than the balanced one.
    const [best, other] = frag.metrics.candidates;
    assert.ok(best !== undefined && other !== undefined && best.scores[SCORER_FRAGMENTATION]! > other.scores[SCORER_FRAGMENTATION]!);
    for (const c of frag.metrics.candidates) assert.ok(Math.abs(c.scores[SCORER_FRAGMENTATION]!) <= 1);
  });

  test("puts a task of the typical shape where it keeps the other node's shape usable", () => {
    const typical = makeSpec("typical-more", { cpu: 1, memory: 8 * GiB, placement: { strategy: "fragmentation" } });
    assert.equal(placeTasks(makeTasks(typical), snapshotOf(nodes, bound)).placements[0]?.nodeId, "balanced");
  });

  test("jobs that name no strategy follow the cell's default; a job's own strategy wins", () => {
    const snap = snapshotOf(nodes, bound);
    const scoresOf = (spec: JobSpec, defaultStrategy?: "spread" | "fragmentation") => Object.keys(placeTasks(makeTasks(spec), snap, defaultStrategy ? { defaultStrategy } : {}).placements[0]?.scores ?? {});
    assert.ok(scoresOf(strategyless("a")).includes(SCORER_BINPACK));
    assert.ok(scoresOf(strategyless("b"), "fragmentation").includes(SCORER_FRAGMENTATION));
    assert.ok(scoresOf(strategyless("c"), "spread").includes(SCORER_SPREAD));
    assert.ok(scoresOf(makeSpec("d", { placement: { strategy: "binpack" } }), "fragmentation").includes(SCORER_BINPACK));
  });

  test("counts devices as a dimension: a cpu task stays off the GPU node while a GPU task may need its cpu", () => {
    const gpuNode = { ...makeNode("gpu", { cpu: 8, memory: 64 * GiB }), devices: [{ name: "nvidia/gpu", shareable: false, instances: [{ id: "g0", attributes: {} }, { id: "g1", attributes: {} }] }] };
    const plain = makeNode("plain", { cpu: 8, memory: 64 * GiB });
    const round = (strategy: "binpack" | "fragmentation") => {
      const gpuSpec = makeSpec("train", { cpu: 4, memory: 16 * GiB, placement: { strategy } });
      const gpuTask = { ...gpuSpec, resources: { ...gpuSpec.resources, devices: [{ name: "nvidia/gpu", count: 1, constraints: [] }] } };
      const cpuTask = makeSpec("web", { cpu: 4, memory: 16 * GiB, placement: { strategy } });
      // The cpu task goes first, with the GPU tasks waiting in the same call.
      return placeTasks([...makeTasks(cpuTask), ...makeTasks(gpuTask, { count: 2 })], snapshotOf([gpuNode, plain]));
    };
    const r = round("fragmentation");
    assert.equal(r.placements.find((p) => p.taskId === "web/0")?.nodeId, "plain");
    assert.deepEqual(r.placements.filter((p) => p.taskId.startsWith("train")).map((p) => p.nodeId), ["gpu", "gpu"]);
    // binpack fills the GPU node with the cpu task and strands a GPU.
    assert.deepEqual(round("binpack").unplaced.map((u) => u.taskId), ["train/1"]);
  });
});
