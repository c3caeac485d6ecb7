/**
 * Scheduler specification: feasibility checkers and the reasons they record,
 * ordering, equivalence classes, sampling, determinism and scale.
 * Scoring and preemption live in scheduler-scoring.test.ts and scheduler-preemption.test.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { NodeInfo } from "../../src/common/types.js";
import { TorcaError } from "../../src/common/errors.js";
import { placeTasks, type Allocation } from "../../src/manager/scheduler/index.js";
import { GiB, makeAllocation, makeNode, makeSpec, makeTasks, nodeIds, snapshotOf } from "./scheduler-harness.js";

/** Wraps a node so reads of its attributes are counted (each read = one constraint evaluation pass). */
function countingAttributeReads(node: NodeInfo, counter: { reads: number }): NodeInfo {
  const attributes = node.attributes;
  const copy = { ...node };
  Object.defineProperty(copy, "attributes", {
    enumerable: true,
    get() {
      counter.reads++;
      return attributes;
    },
  });
  return copy;
}

describe("feasibility: resources", () => {
  test("a task that fits is placed with its node and scores", () => {
    const r = placeTasks(makeTasks(makeSpec("web")), snapshotOf([makeNode("n1")]));
    assert.equal(r.placements.length, 1);
    assert.equal(r.placements[0]?.taskId, "web/0");
    assert.equal(r.placements[0]?.nodeId, "n1");
    assert.deepEqual(r.unplaced, []);
    assert.deepEqual(r.preemptions, []);
  });

  test("cpu, memory and disk are each checked against allocatable minus allocations", () => {
    const nodes = [makeNode("cpu-full", { cpu: 4 }), makeNode("mem-full", { memory: 8 * GiB }), makeNode("disk-full", { disk: 10 * GiB })];
    const allocations = [
      makeAllocation("other/0", "cpu-full", { cpu: 3, memory: 0, disk: 0 }),
      makeAllocation("other/1", "mem-full", { cpu: 0, memory: 7 * GiB, disk: 0 }),
      makeAllocation("other/2", "disk-full", { cpu: 0, memory: 0, disk: 9.5 * GiB }),
    ];
    const r = placeTasks(makeTasks(makeSpec("big", { cpu: 2, memory: 2 * GiB, disk: 1 * GiB })), snapshotOf(nodes, allocations));
    assert.deepEqual(r.placements, []);
    assert.deepEqual(r.unplaced[0]?.reasons, { "cpu exhausted": 1, "disk exhausted": 1, "memory exhausted": 1 });
  });

  test("a task asking for exactly what is free fits, even with fractional cpu", () => {
    const node = makeNode("n1", { cpu: 1 });
    const allocations = [makeAllocation("a/0", "n1", { cpu: 0.1, memory: 0, disk: 0 }), makeAllocation("a/1", "n1", { cpu: 0.2, memory: 0, disk: 0 })];
    const r = placeTasks(makeTasks(makeSpec("t", { cpu: 0.7, memory: 0, disk: 0 })), snapshotOf([node], allocations));
    assert.equal(r.placements.length, 1);
  });

  test("placements made earlier in the same call use up resources", () => {
    const spec = makeSpec("w", { cpu: 2, instances: 3 });
    const r = placeTasks(makeTasks(spec), snapshotOf([makeNode("n1", { cpu: 4 })]));
    assert.deepEqual(
      r.placements.map((p) => p.taskId),
      ["w/0", "w/1"],
    );
    assert.equal(r.unplaced[0]?.taskId, "w/2");
    assert.deepEqual(r.unplaced[0]?.reasons, { "cpu exhausted": 1 });
  });

  test("allocations on nodes missing from the snapshot are ignored", () => {
    const r = placeTasks(makeTasks(makeSpec("t", { cpu: 8 })), snapshotOf([makeNode("n1")], [makeAllocation("x/0", "gone", { cpu: 8 })]));
    assert.equal(r.placements[0]?.nodeId, "n1");
  });
});

describe("feasibility: constraints", () => {
  const nodes = [
    makeNode("linux-a", { attributes: { os: "linux", zone: "a", kernel: "5.10.2", arch: "amd64" } }),
    makeNode("linux-c", { attributes: { os: "linux", zone: "c", kernel: "6.1.0", arch: "arm64" } }),
    makeNode("windows-b", { attributes: { os: "windows", zone: "b", arch: "amd64" } }),
  ];
  const placedOn = (spec: ReturnType<typeof makeSpec>): string[] =>
    placeTasks(makeTasks(spec), snapshotOf(nodes))
      .placements.map((p) => p.nodeId)
      .sort();
  const eligible = (spec: ReturnType<typeof makeSpec>): string[] => {
    // Place one instance per node (maxPerNode 1) so the result lists every eligible node.
    const wide = { ...spec, instances: 3, placement: { strategy: "binpack" as const, maxPerNode: 1 } };
    return placedOn(wide);
  };

  test("= matches equal attribute values only", () => {
    assert.deepEqual(eligible(makeSpec("t", { constraints: [{ attribute: "os", operator: "=", value: "linux" }] })), ["linux-a", "linux-c"]);
  });

  test("!= excludes equal values", () => {
    assert.deepEqual(eligible(makeSpec("t", { constraints: [{ attribute: "arch", operator: "!=", value: "arm64" }] })), ["linux-a", "windows-b"]);
  });

  test("in accepts any value of the list", () => {
    assert.deepEqual(eligible(makeSpec("t", { constraints: [{ attribute: "zone", operator: "in", value: ["a", "b"] }] })), ["linux-a", "windows-b"]);
  });

  test("regexp is unanchored: it matches anywhere in the value unless the pattern says ^ or $", () => {
    assert.deepEqual(eligible(makeSpec("t", { constraints: [{ attribute: "kernel", operator: "regexp", value: "\\.1" }] })), ["linux-a", "linux-c"]);
    assert.deepEqual(eligible(makeSpec("t", { constraints: [{ attribute: "kernel", operator: "regexp", value: "^5\\." }] })), ["linux-a"]);
  });

  test("regexp runs on a linear-time engine: a catastrophic-backtracking pattern is answered, not hung", () => {
    // On a backtracking engine this pattern costs seconds per node on a 16-character value and
    // doubles with each character; RE2 semantics answer it in one pass over the value.
    const long = makeNode("long", { attributes: { kernel: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" } });
    const bang = makeNode("bang", { attributes: { kernel: "aaaaaaaaaaaaaaaa!" } });
    const spec = makeSpec("t", { constraints: [{ attribute: "kernel", operator: "regexp", value: "^(.*?)*(.*?)*(.*?)*(.*?)*!$" }] });
    const r = placeTasks(makeTasks(spec), snapshotOf([long, bang]));
    assert.deepEqual(r.placements.map((p) => p.nodeId), ["bang"]);
  });

  test("regexp syntax beyond RE2 (lookaround, backreferences) matches nothing and says the pattern is invalid", () => {
    const spec = makeSpec("t", { constraints: [{ attribute: "kernel", operator: "regexp", value: "^(?=5)" }] });
    const r = placeTasks(makeTasks(spec), snapshotOf(nodes));
    assert.deepEqual(r.unplaced[0]?.reasons, { "constraint kernel regexp ^(?=5) is not a valid regular expression": 3 });
  });

  test("a missing attribute fails the constraint, for != too", () => {
    assert.deepEqual(eligible(makeSpec("t", { constraints: [{ attribute: "kernel", operator: "!=", value: "6.1.0" }] })), ["linux-a"]);
  });

  test("all constraints must hold", () => {
    const spec = makeSpec("t", {
      constraints: [
        { attribute: "os", operator: "=", value: "linux" },
        { attribute: "arch", operator: "=", value: "amd64" },
      ],
    });
    assert.deepEqual(eligible(spec), ["linux-a"]);
  });

  test("a failed constraint is recorded with its text", () => {
    const spec = makeSpec("t", { constraints: [{ attribute: "zone", operator: "in", value: ["x", "y"] }] });
    const r = placeTasks(makeTasks(spec), snapshotOf(nodes));
    assert.deepEqual(r.unplaced[0]?.reasons, { "constraint zone in [x, y] failed": 3 });
  });

  test("an invalid regexp matches no node and says so instead of throwing", () => {
    const spec = makeSpec("t", { constraints: [{ attribute: "kernel", operator: "regexp", value: "(" }] });
    const r = placeTasks(makeTasks(spec), snapshotOf(nodes));
    assert.deepEqual(r.unplaced[0]?.reasons, { "constraint kernel regexp ( is not a valid regular expression": 3 });
  });
});

describe("feasibility: ports, spread limit, drivers, node state", () => {
  test("a static port already taken on a node rejects that node", () => {
    const spec = makeSpec("web", { staticPorts: [8080], instances: 3 });
    const r = placeTasks(makeTasks(spec), snapshotOf([makeNode("n1"), makeNode("n2"), makeNode("n3")], [makeAllocation("old/0", "n2", { staticPorts: [8080] })]));
    assert.deepEqual(r.placements.map((p) => p.nodeId).sort(), ["n1", "n3"]);
    assert.equal(r.unplaced.length, 1);
    assert.deepEqual(r.unplaced[0]?.reasons, { "static port 8080 in use": 3 });
  });

  test("other static ports do not conflict", () => {
    const spec = makeSpec("web", { staticPorts: [8080] });
    const r = placeTasks(makeTasks(spec), snapshotOf([makeNode("n1")], [makeAllocation("old/0", "n1", { staticPorts: [9090] })]));
    assert.equal(r.placements.length, 1);
  });

  test("maxPerNode limits instances of a job per node, counting existing ones", () => {
    const spec = makeSpec("w", { instances: 5, placement: { strategy: "binpack", maxPerNode: 2 } });
    const r = placeTasks(makeTasks(spec, { count: 4, firstIndex: 1 }), snapshotOf([makeNode("n1"), makeNode("n2")], [makeAllocation("w/0", "n1")]));
    const perNode = r.placements.reduce<Record<string, number>>((acc, p) => ({ ...acc, [p.nodeId]: (acc[p.nodeId] ?? 0) + 1 }), {});
    assert.deepEqual(perNode, { n1: 1, n2: 2 });
    assert.deepEqual(r.unplaced[0]?.reasons, { "job spread: 2 per node reached": 2 });
  });

  test("isolation lxc needs a node with the lxc driver", () => {
    const spec = makeSpec("c", { isolation: "lxc" });
    const r = placeTasks(makeTasks(spec), snapshotOf([makeNode("plain", { lxc: false })]));
    assert.deepEqual(r.unplaced[0]?.reasons, { "driver lxc unavailable": 1 });
    const ok = placeTasks(makeTasks(spec), snapshotOf([makeNode("plain", { lxc: false }), makeNode("box")]));
    assert.equal(ok.placements[0]?.nodeId, "box");
  });

  test("isolation process needs the process driver", () => {
    const spec = makeSpec("c", { isolation: "process" });
    const r = placeTasks(makeTasks(spec), snapshotOf([makeNode("lxc-only", { process: false })]));
    assert.deepEqual(r.unplaced[0]?.reasons, { "driver process unavailable": 1 });
  });

  test("draining and lost nodes receive nothing, even when they would score best", () => {
    const nodes = [makeNode("draining", { state: "draining" }), makeNode("lost", { state: "lost" }), makeNode("ready")];
    // The ready node is busier, but binpack would prefer it anyway; make the others clearly better for spread.
    const spec = makeSpec("s", { placement: { strategy: "spread" } });
    const r = placeTasks(makeTasks(spec), snapshotOf(nodes, [makeAllocation("x/0", "ready", { cpu: 6 })]));
    assert.equal(r.placements[0]?.nodeId, "ready");
    const none = placeTasks(makeTasks(spec), snapshotOf(nodes.slice(0, 2)));
    assert.deepEqual(none.unplaced[0]?.reasons, { "node draining": 1, "node lost": 1 });
  });
});

describe("unplaced: reasons, summary, largestFit", () => {
  test("the summary lists node counts per reason, most common first", () => {
    const nodes = [
      makeNode("m1", { memory: 2 * GiB }),
      makeNode("m2", { memory: 2 * GiB }),
      makeNode("m3", { memory: 2 * GiB }),
      makeNode("win", { attributes: { os: "windows" } }),
    ];
    const spec = makeSpec("t", { memory: 4 * GiB, constraints: [{ attribute: "os", operator: "=", value: "linux" }] });
    const r = placeTasks(makeTasks(spec), snapshotOf(nodes));
    assert.equal(r.unplaced[0]?.summary, "3 nodes: memory exhausted; 1 node: constraint os = linux failed");
    assert.deepEqual(r.unplaced[0]?.reasons, { "memory exhausted": 3, "constraint os = linux failed": 1 });
  });

  test("every node is accounted for exactly once, by its first failing check", () => {
    const nodes = nodeIds(20).map((id, i) => makeNode(id, { state: i < 5 ? "draining" : "ready", cpu: 1, memory: i % 2 === 0 ? 0 : 16 * GiB }));
    const r = placeTasks(makeTasks(makeSpec("t", { cpu: 2, memory: GiB })), snapshotOf(nodes));
    const reasons = r.unplaced[0]?.reasons ?? {};
    assert.equal(
      Object.values(reasons).reduce((a, b) => a + b, 0),
      20,
    );
    assert.deepEqual(reasons, { "cpu exhausted": 15, "node draining": 5 });
  });

  test("largestFit is the largest cpu and memory free on any single ready node", () => {
    const nodes = [makeNode("a", { cpu: 4, memory: 8 * GiB }), makeNode("b", { cpu: 8, memory: 4 * GiB }), makeNode("drained", { cpu: 64, memory: 256 * GiB, state: "draining" })];
    const allocations = [makeAllocation("x/0", "b", { cpu: 5, memory: GiB })];
    const r = placeTasks(makeTasks(makeSpec("huge", { cpu: 32 })), snapshotOf(nodes, allocations));
    assert.deepEqual(r.unplaced[0]?.largestFit, { cpu: 4, memory: 8 * GiB });
  });

  test("largestFit reflects placements made earlier in the call", () => {
    const tasks = [...makeTasks(makeSpec("a", { cpu: 3, memory: 2 * GiB })), ...makeTasks(makeSpec("b", { cpu: 16 }))];
    const r = placeTasks(tasks, snapshotOf([makeNode("n1", { cpu: 8, memory: 16 * GiB })]));
    assert.deepEqual(r.unplaced[0]?.largestFit, { cpu: 5, memory: 14 * GiB });
  });

  test("an empty cluster places nothing and says so", () => {
    const r = placeTasks(makeTasks(makeSpec("t")), snapshotOf([]));
    assert.deepEqual(r.unplaced, [{ taskId: "t/0", reasons: {}, summary: "no nodes in the cluster", largestFit: { cpu: 0, memory: 0 }, metrics: { nodesEvaluated: 0, nodesFiltered: {}, nodesExhausted: {}, candidates: [] } }]);
  });
});

describe("ordering", () => {
  test("higher priority tasks are placed first, whatever the input order", () => {
    const low = makeTasks(makeSpec("low", { cpu: 6, priority: 50 }));
    const high = makeTasks(makeSpec("high", { cpu: 6, priority: 200 }));
    const r = placeTasks([...low, ...high], snapshotOf([makeNode("n1")]));
    assert.deepEqual(
      r.placements.map((p) => p.taskId),
      ["high/0"],
    );
    assert.deepEqual(
      r.unplaced.map((u) => u.taskId),
      ["low/0"],
    );
  });

  test("within a priority, input order decides", () => {
    const tasks = [...makeTasks(makeSpec("second", { cpu: 6 })), ...makeTasks(makeSpec("first", { cpu: 6 }))];
    const r = placeTasks(tasks, snapshotOf([makeNode("n1")]));
    assert.deepEqual(
      r.placements.map((p) => p.taskId),
      ["second/0"],
    );
  });
});

describe("equivalence classes", () => {
  test("identical instances of a job share one feasibility pass", () => {
    const counter = { reads: 0 };
    const nodes = nodeIds(3).map((id) => countingAttributeReads(makeNode(id, { memory: GiB }), counter));
    const spec = makeSpec("t", { instances: 50, memory: 2 * GiB, constraints: [{ attribute: "os", operator: "=", value: "linux" }] });
    const r = placeTasks(makeTasks(spec), snapshotOf(nodes));
    assert.equal(r.unplaced.length, 50);
    assert.equal(counter.reads, 3);
  });

  test("unplaced instances of a class report the same reasons, as separate objects", () => {
    const spec = makeSpec("t", { instances: 5, memory: 64 * GiB });
    const r = placeTasks(makeTasks(spec), snapshotOf([makeNode("n1"), makeNode("n2")]));
    assert.equal(r.unplaced.length, 5);
    for (const u of r.unplaced) {
      assert.deepEqual(u.reasons, { "memory exhausted": 2 });
      assert.equal(u.summary, "2 nodes: memory exhausted");
    }
    assert.notEqual(r.unplaced[0]?.reasons, r.unplaced[1]?.reasons);
  });

  test("different jobs, or one job with different specs, are different classes", () => {
    const counter = { reads: 0 };
    const nodes = nodeIds(3).map((id) => countingAttributeReads(makeNode(id), counter));
    const small = makeSpec("j", { cpu: 1 });
    const big = makeSpec("j", { cpu: 100 });
    const other = makeSpec("k", { cpu: 1 });
    const r = placeTasks([...makeTasks(small, { count: 2 }), ...makeTasks(big, { count: 2, firstIndex: 2 }), ...makeTasks(other)], snapshotOf(nodes));
    assert.deepEqual(r.placements.map((p) => p.taskId).sort(), ["j/0", "j/1", "k/0"]);
    assert.deepEqual(
      r.unplaced.map((u) => u.taskId),
      ["j/2", "j/3"],
    );
    // small and big of job j, and k: three classes, but the same static rules
    // (no constraints, any driver), so one pass over the 3 nodes serves all three
    assert.equal(counter.reads, 3);
  });
});

describe("sampling and determinism", () => {
  test("only sampleSize feasible nodes are examined when enough are feasible", () => {
    const counter = { reads: 0 };
    const nodes = nodeIds(1000).map((id) => countingAttributeReads(makeNode(id), counter));
    placeTasks(makeTasks(makeSpec("t")), snapshotOf(nodes), { sampleSize: 4, seed: 7 });
    assert.equal(counter.reads, 4);
  });

  test("scanning continues past infeasible nodes until a fit is found", () => {
    const ids = nodeIds(10_000);
    const nodes = ids.map((id) => makeNode(id, { cpu: 4, memory: 8 * GiB }));
    nodes[7777] = makeNode(ids[7777] as string, { cpu: 64, memory: 256 * GiB });
    for (const seed of [0, 1, 42]) {
      const r = placeTasks(makeTasks(makeSpec("huge", { cpu: 32, memory: 128 * GiB })), snapshotOf(nodes), { seed });
      assert.equal(r.placements[0]?.nodeId, "n-07777");
    }
  });

  test("on 10,000 nodes the only node matching a constraint is found", () => {
    const ids = nodeIds(10_000);
    const nodes = ids.map((id, i) => makeNode(id, { attributes: { gpu: i === 4242 ? "a100" : "none" } }));
    const r = placeTasks(makeTasks(makeSpec("train", { constraints: [{ attribute: "gpu", operator: "=", value: "a100" }] })), snapshotOf(nodes), { seed: 3 });
    assert.equal(r.placements[0]?.nodeId, "n-04242");
    const u = placeTasks(makeTasks(makeSpec("train", { constraints: [{ attribute: "gpu", operator: "=", value: "h100" }] })), snapshotOf(nodes));
    assert.equal(u.unplaced[0]?.summary, "10000 nodes: constraint gpu = h100 failed");
  });

  test("the same input and seed give the same result", () => {
    const nodes = nodeIds(300).map((id, i) => makeNode(id, { cpu: 4 + (i % 5), attributes: { zone: `z${i % 3}` } }));
    const allocations = nodeIds(300)
      .filter((_, i) => i % 4 === 0)
      .map((id, i) => makeAllocation(`bg/${i}`, id, { cpu: 1 + (i % 3) }));
    const tasks = [
      ...makeTasks(makeSpec("a", { instances: 40, cpu: 1.5 })),
      ...makeTasks(makeSpec("b", { instances: 40, placement: { strategy: "spread" }, constraints: [{ attribute: "zone", operator: "!=", value: "z1" }] })),
    ];
    const run = (seed: number) => placeTasks(tasks, snapshotOf(nodes, allocations), { seed, sampleSize: 8 });
    assert.deepEqual(run(11), run(11));
  });

  test("the seed moves where the scan starts", () => {
    const nodes = nodeIds(50).map((id) => makeNode(id));
    const chosen = new Set<string>();
    for (let seed = 0; seed < 10; seed++) {
      const r = placeTasks(makeTasks(makeSpec("t")), snapshotOf(nodes), { seed, sampleSize: 1 });
      chosen.add(r.placements[0]?.nodeId ?? "");
    }
    assert.ok(chosen.size >= 5, `expected the first node to vary with the seed, got ${[...chosen].join(",")}`);
  });

  test("each scan resumes where the previous one stopped", () => {
    const nodes = nodeIds(10).map((id) => makeNode(id));
    const r = placeTasks(makeTasks(makeSpec("t", { instances: 10, placement: { strategy: "spread" } })), snapshotOf(nodes), { sampleSize: 1 });
    assert.equal(new Set(r.placements.map((p) => p.nodeId)).size, 10);
  });
});

describe("programming errors throw; misfits never do", () => {
  test("negative or non-finite resources throw", () => {
    assert.throws(() => placeTasks(makeTasks(makeSpec("t", { cpu: -1 })), snapshotOf([makeNode("n1")])), TorcaError);
    assert.throws(() => placeTasks(makeTasks(makeSpec("t", { memory: Number.NaN })), snapshotOf([makeNode("n1")])), TorcaError);
  });

  test("a task id pending twice throws", () => {
    const tasks = makeTasks(makeSpec("t"));
    assert.throws(() => placeTasks([...tasks, ...tasks], snapshotOf([makeNode("n1")])), /pending twice/);
  });

  test("a sample size below one throws", () => {
    assert.throws(() => placeTasks([], snapshotOf([]), { sampleSize: 0 }), /sampleSize/);
  });

  test("duplicate node ids throw", () => {
    assert.throws(() => placeTasks([], snapshotOf([makeNode("n1"), makeNode("n1")])), /duplicate node id/);
  });

  test("a task larger than every node is reported, not thrown", () => {
    const r = placeTasks(makeTasks(makeSpec("t", { cpu: 1e6 })), snapshotOf([makeNode("n1")]));
    assert.equal(r.unplaced.length, 1);
  });
});

describe("purity", () => {
  function deepFreeze<T>(value: T): T {
    if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
      Object.freeze(value);
      for (const v of Object.values(value)) deepFreeze(v);
    }
    return value;
  }

  test("the input is never modified", () => {
    const snapshot = deepFreeze(snapshotOf([makeNode("n1", { cpu: 4 }), makeNode("n2")], [makeAllocation("low/0", "n1", { cpu: 4, priority: 1, staticPorts: [80] })]));
    const pending = deepFreeze([...makeTasks(makeSpec("web", { instances: 3, cpu: 2, priority: 300, staticPorts: [80] }), { packageDigest: "sha256:x" })]);
    // Frozen objects throw on write in strict-mode ES modules, so any mutation would fail here.
    const r = placeTasks(pending, snapshot);
    assert.equal(r.placements.length, 2);
    assert.equal(r.preemptions.length, 1);
  });

  test("a nodes array reused across calls is re-read: changed states and replaced nodes are seen", () => {
    const nodes = [makeNode("a"), makeNode("b")];
    const snapshot = snapshotOf(nodes);
    const spec = makeSpec("t", { placement: { strategy: "spread" } });
    assert.equal(placeTasks(makeTasks(spec), snapshot).placements[0]?.nodeId, "a");
    nodes[0] = { ...(nodes[0] as NodeInfo), state: "draining" };
    assert.equal(placeTasks(makeTasks(spec), snapshot).placements[0]?.nodeId, "b");
    nodes[1] = makeNode("c");
    nodes.push(makeNode("d", { state: "lost" }));
    const r = placeTasks(makeTasks(spec, { count: 2 }), snapshot);
    assert.deepEqual(
      r.placements.map((p) => p.nodeId),
      ["c", "c"],
    );
    (nodes[2] as NodeInfo).state = "ready";
    const again = placeTasks(makeTasks(spec), snapshotOf(nodes, [makeAllocation("x/0", "c", { cpu: 7 })]));
    assert.equal(again.placements[0]?.nodeId, "d");
  });
});

describe("the cluster index kept between calls", () => {
  test("calls on a warm index give exactly what a cold one gives: placements, scores, reasons, metrics, preemptions", () => {
    const nodes = nodeIds(120).map((id, i) =>
      makeNode(id, { cpu: 8, memory: 16 * GiB, state: i % 40 === 7 ? "draining" : "ready", lxc: i % 5 !== 0, attributes: { os: i % 10 === 0 ? "windows" : "linux", zone: `z${i % 4}` }, cachedPackages: i % 3 === 0 ? ["sha256:aa"] : [] }),
    );
    const allocations: Allocation[] = [];
    for (let j = 0; j < 60; j++) {
      const spec = makeSpec(`job-${j}`, {
        instances: 20,
        priority: j % 7 === 6 ? 200 : 100,
        cpu: [0.5, 1, 2][j % 3],
        constraints: j % 2 === 0 ? [{ attribute: "os", operator: "=", value: "linux" }] : [{ attribute: "zone", operator: "in", value: ["z1", "z2"] }],
        isolation: j % 4 === 0 ? "lxc" : undefined,
        staticPorts: j % 9 === 0 ? [9000] : [],
        placement: { strategy: j % 5 === 0 ? "spread" : "binpack", ...(j % 6 === 0 ? { maxPerNode: 1 } : {}) },
      });
      const tasks = makeTasks(spec, j % 2 === 0 ? { packageDigest: "sha256:aa" } : {});
      if (j === 30) nodes[3] = { ...(nodes[3] as NodeInfo), state: "lost" };
      const warm = placeTasks(tasks, { nodes, allocations }, { seed: j, explain: j % 10 === 9 });
      const cold = placeTasks(tasks, { nodes: [...nodes], allocations: [...allocations] }, { seed: j, explain: j % 10 === 9 });
      assert.equal(JSON.stringify(warm), JSON.stringify(cold), `call ${j}`);
      if (warm.preemptions.length > 0) {
        const gone = new Set(warm.preemptions.map((p) => p.victimTaskId));
        const kept = allocations.filter((a) => !gone.has(a.taskId));
        allocations.length = 0;
        allocations.push(...kept);
      }
      for (const p of warm.placements) allocations.push(makeAllocation(p.taskId, p.nodeId, { ...spec.resources, priority: spec.priority, jobId: spec.name, staticPorts: spec.ports.flatMap((x) => (x.static === undefined ? [] : [x.static])) }));
    }
    assert.ok(allocations.length > 500, `the cell filled up (${allocations.length} allocations)`);
  });
});
