/**
 * Devices on a real cell: the agent declares two GPUs in its config
 * (agent.devices, as on a machine without nvidia-smi); two tasks asking one
 * GPU each run with different instances in NVIDIA_VISIBLE_DEVICES and
 * CUDA_VISIBLE_DEVICES (read from their output), and a third stays pending
 * with the device reason, in the job API and in `torca status`. When one of
 * the two finishes, the third gets the instance it freed.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { runTorca } from "../harness/cli.js";
import { startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

const skip = zookeeperInstalled() ? false : "ZooKeeper is not installed";

describe("device assignment on a cell", { skip, timeout: 300_000 }, () => {
  let tc: TestCell;

  before(async () => {
    tc = await startTestCell({
      managers: 1,
      agents: 1,
      sessionTimeout: "8s",
      // Every daemon reads the override; only the agent acts on agent.devices.
      env: { TORCA_AGENT_DEVICES: "[{ name: nvidia/gpu, attributes: { model: Tesla T4, memory: 15360MiB }, instances: [fake-gpu-0, fake-gpu-1] }]" },
    });
  });

  after(async () => {
    await tc?.close();
  });

  const logsOf = async (taskId: string) => tc.api.get(`${await tc.primaryUrl()}/v1/tasks/${encodeURIComponent(taskId)}/logs?stream=stdout`).text();

  it("gives two tasks different GPUs and keeps the third pending with a device reason", async () => {
    const job = [
      "name: train",
      "type: batch",
      "isolation: process",
      "instances: 3",
      // Each task prints its variables, then holds its GPU until the file `release-<index>` appears in the cell dir.
      `command: ["/bin/sh", "-c", "echo nvidia=$NVIDIA_VISIBLE_DEVICES cuda=$CUDA_VISIBLE_DEVICES; while [ ! -e ${tc.cell.dir}/release-$TORCA_INDEX ]; do sleep 0.2; done"]`,
      "resources:",
      "  cpu: 0.1",
      "  memory: 32MiB",
      "  devices: [{ name: nvidia/gpu, count: 1, constraints: [{ attribute: model, operator: regexp, value: T4 }] }]",
      "restart: { attempts: 0 }",
      "",
    ].join("\n");
    const { id } = await tc.submit(job);
    const j = await tc.waitJob(id, (x) => x.taskList.filter((t) => t.state === "running").length === 2 && x.taskList.some((t) => t.state === "pending" && t.reason !== undefined), 90_000, "two running, one pending with a reason");

    const running = j.taskList.filter((t) => t.state === "running");
    const given = running.map((t) => t.devices?.[0]?.ids[0]);
    assert.deepEqual([...given].sort(), ["fake-gpu-0", "fake-gpu-1"], JSON.stringify(running.map((t) => t.devices)));
    for (const t of running) {
      const out = await until(`${t.id} printed its devices`, async () => {
        const text = await logsOf(t.id);
        return text.includes("nvidia=") && text;
      }, { timeoutMs: 30_000 });
      const gpu = t.devices?.[0]?.ids[0];
      assert.equal(out.trim(), `nvidia=${gpu} cuda=${gpu}`);
    }

    const waiting = j.taskList.find((t) => t.state === "pending");
    assert.equal(waiting?.reason, "no node fits: 1 node: devices: nvidia/gpu with model regexp T4 0 of 1 free");
    const status = await runTorca(["status", id, "--json"], { TORCA_MANAGER: tc.cell.managerUrls.join(","), TORCA_TOKEN: tc.cell.token, TORCA_CELL_DIR: "/nonexistent" });
    assert.equal(status.code, 0, status.stderr);
    assert.ok(status.stdout.includes("devices: nvidia/gpu with model regexp T4 0 of 1 free"), status.stdout);

    // One holder finishes: its instance goes to the waiting task.
    const first = running[0]!;
    await writeFile(join(tc.cell.dir, `release-${first.index}`), "");
    const later = await tc.waitJob(id, (x) => x.taskList.find((t) => t.id === waiting!.id)?.state === "running", 60_000, "the third task running");
    assert.deepEqual(later.taskList.find((t) => t.id === waiting!.id)?.devices, first.devices);
    for (const t of later.taskList) await writeFile(join(tc.cell.dir, `release-${t.index}`), "");
    await tc.waitJob(id, (x) => x.taskList.every((t) => t.state === "completed"), 60_000, "all completed");
  });
});
