import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { DeviceRequest, JobSpec, NodeDeviceGroup, NodeInfo } from "../../src/common/types.js";
import { placeTasks } from "../../src/manager/scheduler/index.js";
import { makeAllocation, makeNode, makeSpec, makeTasks, snapshotOf } from "./scheduler-harness.js";

function gpus(ids: string[], opts: { model?: string; shareable?: boolean; name?: string } = {}): NodeDeviceGroup {
  return { name: opts.name ?? "nvidia/gpu", shareable: opts.shareable ?? false, instances: ids.map((id) => ({ id, attributes: { model: opts.model ?? "T4", memory: "15360MiB" } })) };
}

function withDevices(node: NodeInfo, ...groups: NodeDeviceGroup[]): NodeInfo {
  return { ...node, devices: groups };
}

function asking(name: string, devices: DeviceRequest[], opts: Parameters<typeof makeSpec>[1] = {}): JobSpec {
  const spec = makeSpec(name, { cpu: 0.5, ...opts });
  return { ...spec, resources: { ...spec.resources, devices } };
}

const oneGpu: DeviceRequest[] = [{ name: "nvidia/gpu", count: 1, constraints: [] }];

describe("devices", () => {
  test("two tasks asking one GPU each on a node with two get different instances; a third waits with a device reason", () => {
    const node = withDevices(makeNode("gpu-node"), gpus(["GPU-a", "GPU-b"]));
    const r = placeTasks(makeTasks(asking("train", oneGpu, { instances: 3 })), snapshotOf([node]));
    assert.equal(r.placements.length, 2);
    const given = r.placements.map((p) => p.devices);
    assert.deepEqual(given, [[{ name: "nvidia/gpu", ids: ["GPU-a"] }], [{ name: "nvidia/gpu", ids: ["GPU-b"] }]]);
    assert.equal(r.unplaced.length, 1);
    assert.deepEqual(r.unplaced[0]?.reasons, { "devices: nvidia/gpu 0 of 1 free": 1 });
    assert.deepEqual(r.unplaced[0]?.metrics.nodesExhausted, { "device nvidia/gpu": 1 });
  });

  test("instances held by bound tasks (their recorded assignment) are not given again", () => {
    const node = withDevices(makeNode("gpu-node"), gpus(["GPU-a", "GPU-b"]));
    const running = { ...makeAllocation("old/0", "gpu-node", { cpu: 0.5 }), devices: [{ name: "nvidia/gpu", ids: ["GPU-a"] }] };
    const r = placeTasks(makeTasks(asking("train", oneGpu, { instances: 2 })), snapshotOf([node], [running]));
    assert.deepEqual(r.placements.map((p) => p.devices), [[{ name: "nvidia/gpu", ids: ["GPU-b"] }]]);
    assert.equal(r.unplaced[0]?.summary, "1 node: devices: nvidia/gpu 0 of 1 free");
  });

  test("a node without the device, or with too few matching the constraints, says which", () => {
    const plain = makeNode("plain");
    const t4 = withDevices(makeNode("t4"), gpus(["GPU-1", "GPU-2"], { model: "T4" }));
    const request: DeviceRequest[] = [{ name: "nvidia/gpu", count: 2, constraints: [{ attribute: "model", operator: "regexp", value: "A100" }] }];
    const r = placeTasks(makeTasks(asking("big", request)), snapshotOf([plain, t4]));
    assert.deepEqual(r.unplaced[0]?.reasons, { "devices: 0 nvidia/gpu with model regexp A100, 2 wanted": 1, "devices: no nvidia/gpu": 1 });
  });

  test("constraints pick the matching instances", () => {
    const node = withDevices(makeNode("mixed"), { name: "nvidia/gpu", shareable: false, instances: [{ id: "GPU-t4", attributes: { model: "T4" } }, { id: "GPU-a100", attributes: { model: "A100" } }] });
    const request: DeviceRequest[] = [{ name: "nvidia/gpu", count: 1, constraints: [{ attribute: "model", operator: "=", value: "A100" }] }];
    const r = placeTasks(makeTasks(asking("big", request)), snapshotOf([node]));
    assert.deepEqual(r.placements[0]?.devices, [{ name: "nvidia/gpu", ids: ["GPU-a100"] }]);
  });

  test("a shareable device is given to several tasks, the least shared instance first", () => {
    const node = withDevices(makeNode("shared"), gpus(["vf-0", "vf-1"], { name: "example/vf", shareable: true }));
    const r = placeTasks(makeTasks(asking("many", [{ name: "example/vf", count: 1, constraints: [] }], { instances: 3 })), snapshotOf([node]));
    assert.deepEqual(r.placements.map((p) => p.devices?.[0]?.ids[0]), ["vf-0", "vf-1", "vf-0"]);
  });

  test("one task never gets the same instance twice from two requests", () => {
    const node = withDevices(makeNode("gpu-node"), gpus(["GPU-a", "GPU-b"]));
    const r = placeTasks(makeTasks(asking("pair", [...oneGpu, ...oneGpu])), snapshotOf([node]));
    assert.deepEqual(r.placements[0]?.devices, [{ name: "nvidia/gpu", ids: ["GPU-a"] }, { name: "nvidia/gpu", ids: ["GPU-b"] }]);
  });

  test("the tasks go where the devices are, and tasks without devices still place on nodes that have some", () => {
    const nodes = [makeNode("a"), withDevices(makeNode("b"), gpus(["GPU-x"])), makeNode("c")];
    const r = placeTasks([...makeTasks(asking("gpu", oneGpu)), ...makeTasks(makeSpec("cpu-only", { instances: 3, cpu: 0.5 }))], snapshotOf(nodes));
    assert.equal(r.placements.find((p) => p.taskId === "gpu/0")?.nodeId, "b");
    assert.equal(r.placements.length, 4);
    for (const p of r.placements.filter((p) => p.taskId.startsWith("cpu-only"))) assert.equal(p.devices, undefined);
  });

  describe("preemption for devices", () => {
    const held = (task: string, ids: string[], opts: { cpu?: number; priority?: number } = {}) => ({ ...makeAllocation(task, "gpu-node", { cpu: opts.cpu ?? 0.5, priority: opts.priority ?? 100 }), devices: [{ name: "nvidia/gpu", ids }] });

    test("a task whose device is held by lower-priority work evicts the lowest-priority holder and gets its instance", () => {
      const node = withDevices(makeNode("gpu-node", { cpu: 8 }), gpus(["GPU-a", "GPU-b"]));
      const r = placeTasks(makeTasks(asking("prod", oneGpu, { priority: 200 })), snapshotOf([node], [held("batch/0", ["GPU-a"], { priority: 100 }), held("scavenger/0", ["GPU-b"], { priority: 50 })]));
      assert.deepEqual(r.preemptions, [{ victimTaskId: "scavenger/0", forTaskId: "prod/0", nodeId: "gpu-node" }]);
      assert.deepEqual(r.placements[0]?.devices, [{ name: "nvidia/gpu", ids: ["GPU-b"] }]);
    });

    test("holders of equal or higher priority keep their devices, and the task waits saying why", () => {
      const node = withDevices(makeNode("gpu-node", { cpu: 8 }), gpus(["GPU-a"]));
      const r = placeTasks(makeTasks(asking("prod", oneGpu, { priority: 200 })), snapshotOf([node], [held("other/0", ["GPU-a"], { priority: 200 })]));
      assert.deepEqual(r.preemptions, []);
      assert.equal(r.unplaced[0]?.summary, "1 node: devices: nvidia/gpu 0 of 1 free");
    });

    test("only holders of instances that meet the request's constraints are evicted", () => {
      const node = withDevices(makeNode("gpu-node", { cpu: 8 }), { name: "nvidia/gpu", shareable: false, instances: [{ id: "GPU-t4", attributes: { model: "T4" } }, { id: "GPU-a100", attributes: { model: "A100" } }] });
      const request: DeviceRequest[] = [{ name: "nvidia/gpu", count: 1, constraints: [{ attribute: "model", operator: "=", value: "A100" }] }];
      // The T4's holder has the lower priority, so a victim chosen by priority alone would be the wrong one.
      const r = placeTasks(makeTasks(asking("big", request, { priority: 200 })), snapshotOf([node], [held("t4-user/0", ["GPU-t4"], { priority: 10 }), held("a100-user/0", ["GPU-a100"], { priority: 100 })]));
      assert.deepEqual(r.preemptions.map((p) => p.victimTaskId), ["a100-user/0"]);
      assert.deepEqual(r.placements[0]?.devices, [{ name: "nvidia/gpu", ids: ["GPU-a100"] }]);
    });

    test("what the device holder frees counts towards cpu and memory: no second victim when it is enough", () => {
      const node = withDevices(makeNode("gpu-node", { cpu: 2 }), gpus(["GPU-a"]));
      const cpuOnly = makeAllocation("cpu-only/0", "gpu-node", { cpu: 1, priority: 10 });
      const r = placeTasks(makeTasks(asking("prod", oneGpu, { priority: 200, cpu: 1 })), snapshotOf([node], [held("gpu-user/0", ["GPU-a"], { cpu: 1, priority: 100 }), cpuOnly]));
      assert.deepEqual(r.preemptions.map((p) => p.victimTaskId), ["gpu-user/0"]);
    });

    test("a node without the device at all is no preemption target", () => {
      const r = placeTasks(makeTasks(asking("prod", oneGpu, { priority: 200 })), snapshotOf([withDevices(makeNode("other"), gpus(["X"], { name: "example/fpga" }))], [makeAllocation("batch/0", "other", { cpu: 0.5, priority: 10 })]));
      assert.deepEqual(r.preemptions, []);
      assert.equal(r.unplaced.length, 1);
    });
  });

  test("with no node offering devices, a device request is refused by name on every node", () => {
    const r = placeTasks(makeTasks(asking("gpu", oneGpu)), snapshotOf([makeNode("a"), makeNode("b")]));
    assert.deepEqual(r.unplaced[0]?.reasons, { "devices: no nvidia/gpu": 2 });
  });
});
