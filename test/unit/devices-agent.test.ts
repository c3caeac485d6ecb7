import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigSchema } from "../../src/common/config.js";
import { DriverError } from "../../src/common/errors.js";
import { AgentDevices, configuredGroups, deviceVariable } from "../../agent/devices/devices.js";
import { nvidiaGroup, parseNvidiaSmi } from "../../agent/devices/nvidia.js";
import { deviceNodes, deviceNumbers, renderContainerConfig, type ContainerConfigInput } from "../../agent/driver/lxc-config.js";

// Output of `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`
// on a machine with two GPUs (memory.total is in MiB, written without the unit).
const TWO_A100 = `0, GPU-3b5c1f8e-7a2d-4e0b-9c61-2f9d7a4e5b10, NVIDIA A100-SXM4-80GB, 81920
1, GPU-9e4d2c7a-1b3f-4a8e-b5d6-7c0e1f2a3b49, NVIDIA A100-SXM4-80GB, 81920
`;
// The same query without nounits (the unit after the number) and with the header, as --format=csv writes it.
const WITH_UNITS = `index, uuid, name, memory.total [MiB]
0, GPU-11111111-2222-3333-4444-555555555555, Tesla T4, 15360 MiB
1, GPU-66666666-7777-8888-9999-000000000000, NVIDIA GeForce RTX 3090, 24576 MiB
2, GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, NVIDIA H100 80GB HBM3, [N/A]
`;

function config(devices: unknown) {
  return ConfigSchema.parse({ agent: { devices } }).agent.devices;
}

describe("nvidia-smi", () => {
  test("reads every GPU of its csv output: index, UUID, model and memory in MiB", () => {
    assert.deepEqual(parseNvidiaSmi(TWO_A100), [
      { index: 0, uuid: "GPU-3b5c1f8e-7a2d-4e0b-9c61-2f9d7a4e5b10", name: "NVIDIA A100-SXM4-80GB", memoryMiB: 81920 },
      { index: 1, uuid: "GPU-9e4d2c7a-1b3f-4a8e-b5d6-7c0e1f2a3b49", name: "NVIDIA A100-SXM4-80GB", memoryMiB: 81920 },
    ]);
  });

  test("skips the header, reads memory with its MiB unit, and leaves out memory it reports as [N/A]", () => {
    const gpus = parseNvidiaSmi(WITH_UNITS);
    assert.deepEqual(gpus.map((g) => [g.index, g.name, g.memoryMiB]), [[0, "Tesla T4", 15360], [1, "NVIDIA GeForce RTX 3090", 24576], [2, "NVIDIA H100 80GB HBM3", undefined]]);
  });

  test("no GPUs, or an error message instead of the table, is no devices", () => {
    assert.deepEqual(parseNvidiaSmi(""), []);
    assert.deepEqual(parseNvidiaSmi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n"), []);
  });

  test("the GPUs become nvidia/gpu instances by UUID, with the device nodes that exist", async () => {
    const present = new Set(["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidia1"]);
    const group = await nvidiaGroup(parseNvidiaSmi(TWO_A100), async (p) => present.has(p));
    assert.deepEqual(group, {
      name: "nvidia/gpu",
      shareable: false,
      paths: ["/dev/nvidiactl", "/dev/nvidia-uvm"],
      instances: [
        { id: "GPU-3b5c1f8e-7a2d-4e0b-9c61-2f9d7a4e5b10", attributes: { model: "NVIDIA A100-SXM4-80GB", index: "0", uuid: "GPU-3b5c1f8e-7a2d-4e0b-9c61-2f9d7a4e5b10", memory: "81920MiB" }, paths: ["/dev/nvidia0"] },
        { id: "GPU-9e4d2c7a-1b3f-4a8e-b5d6-7c0e1f2a3b49", attributes: { model: "NVIDIA A100-SXM4-80GB", index: "1", uuid: "GPU-9e4d2c7a-1b3f-4a8e-b5d6-7c0e1f2a3b49", memory: "81920MiB" }, paths: ["/dev/nvidia1"] },
      ],
    });
    assert.equal(await nvidiaGroup([], async () => true), undefined);
  });
});

describe("agent.devices", () => {
  test("declared groups: ids alone or with their own nodes and attributes, under the group's attributes", () => {
    const groups = configuredGroups(config([{ name: "example/fpga", attributes: { model: "U250", memory: 64 }, env: "FPGA_IDS", paths: ["/dev/xclmgmt"], instances: ["fpga0", { id: "fpga1", paths: ["/dev/xocl1"], attributes: { memory: "32GiB" } }] }]));
    assert.deepEqual(groups, [
      {
        name: "example/fpga",
        shareable: false,
        paths: ["/dev/xclmgmt"],
        env: "FPGA_IDS",
        instances: [
          { id: "fpga0", attributes: { model: "U250", memory: "64" }, paths: [] },
          { id: "fpga1", attributes: { model: "U250", memory: "32GiB" }, paths: ["/dev/xocl1"] },
        ],
      },
    ]);
  });

  test("the schema refuses bad names, duplicate ids and names, relative paths and bad variables, naming the field", () => {
    const issues = (devices: unknown): string[] => {
      const r = ConfigSchema.safeParse({ agent: { devices } });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    assert.deepEqual(issues([{ name: "gpu", instances: ["a"] }]), ["agent.devices.0.name: must be vendor/type, e.g. nvidia/gpu"]);
    assert.deepEqual(issues([{ name: "x/gpu", instances: ["a", "a"] }]), ["agent.devices.0.instances: instance ids must be unique"]);
    assert.deepEqual(issues([{ name: "x/gpu", instances: ["a"] }, { name: "x/gpu", instances: ["b"] }]), ["agent.devices: device names must be unique"]);
    assert.deepEqual(issues([{ name: "x/gpu", instances: ["a"], paths: ["dev/x"] }]), ["agent.devices.0.paths.0: must be an absolute path without spaces, e.g. /dev/nvidia0"]);
    assert.deepEqual(issues([{ name: "x/gpu", instances: ["a"], env: "1BAD" }]), ["agent.devices.0.env: must be an environment variable name"]);
  });

  test("a declared nvidia/gpu replaces the fingerprinted one; otherwise both are offered", async () => {
    const found = { name: "nvidia/gpu", shareable: false, paths: [], instances: [{ id: "GPU-real", attributes: {}, paths: [] }] };
    const declared = await AgentDevices.detect(config([{ name: "nvidia/gpu", instances: ["fake0"] }]), async () => found);
    assert.deepEqual(declared.ad(), [{ name: "nvidia/gpu", shareable: false, instances: [{ id: "fake0", attributes: {} }] }]);
    const both = await AgentDevices.detect(config([{ name: "example/fpga", instances: ["f0"] }]), async () => found);
    assert.deepEqual(both.ad().map((g) => g.name), ["nvidia/gpu", "example/fpga"]);
  });

  test("an assignment gives the task its ids in the device's variables and the nodes to bind", () => {
    const devices = new AgentDevices([
      { name: "nvidia/gpu", shareable: false, paths: ["/dev/nvidiactl"], instances: [{ id: "GPU-a", attributes: {}, paths: ["/dev/nvidia0"] }, { id: "GPU-b", attributes: {}, paths: ["/dev/nvidia1"] }] },
      { name: "example/fpga", shareable: false, paths: [], env: "FPGA_IDS", instances: [{ id: "f0", attributes: {}, paths: [] }] },
    ]);
    assert.deepEqual(devices.launchOf([{ name: "nvidia/gpu", ids: ["GPU-b"] }, { name: "example/fpga", ids: ["f0"] }]), {
      env: { TORCA_DEVICES_NVIDIA_GPU: "GPU-b", NVIDIA_VISIBLE_DEVICES: "GPU-b", CUDA_VISIBLE_DEVICES: "GPU-b", TORCA_DEVICES_EXAMPLE_FPGA: "f0", FPGA_IDS: "f0" },
      paths: ["/dev/nvidia1", "/dev/nvidiactl"],
    });
    assert.equal(deviceVariable("acme.io/tpu-v4"), "TORCA_DEVICES_ACME_IO_TPU_V4");
    assert.throws(() => devices.launchOf([{ name: "nvidia/gpu", ids: ["GPU-z"] }]), (e: unknown) => e instanceof DriverError && /nvidia\/gpu GPU-z is not offered/.test(e.message));
    assert.throws(() => devices.launchOf([{ name: "amd/gpu", ids: ["0"] }]), /amd\/gpu is not offered/);
  });
});

describe("device nodes in an LXC container", () => {
  const base: ContainerConfigInput = {
    name: "t", hostname: "t", rootfs: "/r", stopHook: "/h", cgroupParent: "torca", workDir: "/w", env: {}, uid: 70000, gid: 70000,
    network: "host", cpuCores: 0, memoryBytes: 0, memsw: false, pidsMax: 64, tmpSizeBytes: 1024,
  };

  test("are bound at their host path and allowed in the devices cgroup", () => {
    const text = renderContainerConfig({ ...base, devices: [{ path: "/dev/nvidia0", type: "c", major: 195, minor: 0 }, { path: "/opt/fake/dev0", major: 0, minor: 0 }] });
    assert.match(text, /^lxc\.mount\.entry = \/dev\/nvidia0 dev\/nvidia0 none bind,create=file 0 0$/m);
    assert.match(text, /^lxc\.cgroup\.devices\.allow = c 195:0 rwm$/m);
    assert.match(text, /^lxc\.mount\.entry = \/opt\/fake\/dev0 opt\/fake\/dev0 none bind,create=file 0 0$/m);
    assert.equal(text.match(/devices\.allow/g)?.length, 1);
    assert.doesNotMatch(renderContainerConfig(base), /devices\.allow|nvidia/);
  });

  test("device numbers split as glibc's major() and minor() do", () => {
    assert.deepEqual(deviceNumbers(0x0103), { major: 1, minor: 3 }); // /dev/null
    assert.deepEqual(deviceNumbers((195 << 8) | 255), { major: 195, minor: 255 });
    // minor 256 and up: the high minor bits sit above the major's low 12 bits.
    assert.deepEqual(deviceNumbers((0x1n << 20n) | (510n << 8n) | 0x00n), { major: 510, minor: 256 });
  });

  test("are read from the host: a character device with its numbers; a missing one fails the start", async () => {
    assert.deepEqual(await deviceNodes(["/dev/null"]), [{ path: "/dev/null", type: "c", major: 1, minor: 3 }]);
    await assert.rejects(deviceNodes(["/dev/torca-no-such-device"]), (e: unknown) => e instanceof DriverError && /device node \/dev\/torca-no-such-device is missing/.test(e.message));
  });
});
