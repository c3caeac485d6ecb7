import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessDriver } from "../../agent/driver/process.js";
import { PackageCache } from "../../agent/packages/cache.js";
import { PortAllocator } from "../../agent/tasks/ports.js";
import { readRecord, RECORD_FILES } from "../../agent/tasks/record.js";
import { TaskRunner } from "../../agent/tasks/runner.js";
import { TaskUsers } from "../../agent/tasks/task-users.js";
import { AgentDevices } from "../../agent/devices/devices.js";
import { createLogger } from "../../src/common/logger.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import { until } from "../harness/wait.js";

/** A runner of process tasks (no cgroups) in `dir`, with its own ports and task uids (`slot` keeps suites apart) and, when given, devices. */
function runnerIn(dir: string, slot: number, devices?: AgentDevices): TaskRunner {
  const log = createLogger("test");
  return new TaskRunner({
    dataDir: dir,
    nodeId: "n1",
    host: "127.0.0.1",
    drivers: { process: new ProcessDriver({ useCgroups: false }) },
    cache: new PackageCache({ cacheDir: join(dir, "packages"), maxBytes: 1 << 20, sources: { managerUrls: () => [], token: "" }, logger: log }),
    ports: new PortAllocator([41000 + 20 * slot, 41010 + 20 * slot], "127.0.0.1"),
    users: new TaskUsers({ uids: { first: 70000 + 10 * slot, last: 70009 + 10 * slot }, allowRootTasks: false, nodeId: "n1" }),
    ...(devices ? { devices } : {}),
    log,
  });
}

describe("agent reports: exits the primary has recorded are not resent", () => {
  let dir: string;
  let runner: TaskRunner;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "torca-runner-"));
    runner = runnerIn(dir, 0);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function runToExit(taskId: string, attempt: number): Promise<void> {
    const spec = parseTaskFile("name: j\ntype: batch\nisolation: process\ncommand: [/bin/true]\n");
    await runner.start({ epoch: 1, taskId, jobId: "j", index: Number(taskId.split("/")[1]), attempt, spec });
    await until(`${taskId} to exit`, () => runner.get(taskId)?.state === "exited", { timeoutMs: 5000, intervalMs: 25 });
  }

  test("an exit stays in reports to the primary until it says it recorded it; the agent's own listing keeps it", async () => {
    await runToExit("j/0", 1);
    await runToExit("j/1", 1);
    assert.deepEqual(runner.report({ forPrimary: true }).map((t) => t.taskId).sort(), ["j/0", "j/1"]);
    assert.equal(runner.unrecordedCount, 2);

    runner.markRecorded(["j/0#1"]);
    assert.deepEqual(runner.report({ forPrimary: true }).map((t) => t.taskId), ["j/1"]);
    assert.equal(runner.unrecordedCount, 1);
    assert.deepEqual(runner.report().map((t) => t.taskId).sort(), ["j/0", "j/1"], "the agent's status still lists every task");
  });

  test("a task's record ends in the newest of its two files, written in place (no temporary file), and a restarted agent reads it", async () => {
    await runToExit("j/3", 1);
    const taskDir = runner.dirOf("j/3", 1);
    await until("the exit to be on disk", async () => (await readRecord(taskDir))?.state === "exited", { timeoutMs: 5000, intervalMs: 25 });
    const files = (await readdir(taskDir)).filter((f) => f.startsWith("record"));
    assert.deepEqual(files.sort(), [...RECORD_FILES].sort(), "starting, running and exited went to two files");
    const onDisk = (await readRecord(taskDir))!;
    assert.equal(onDisk.seq, runner.get("j/3")?.seq, "the newest file holds the runner's last write");
    assert.ok(onDisk.seq! >= 1);
  });

  test("a job submitted again under its old name is a new task: its attempt 1 starts, in a clean directory, though attempt 1 of the old one ran here", async () => {
    const spec = parseTaskFile("name: j\ntype: batch\nisolation: process\ncommand: [/bin/true]\n");
    const order = (incarnation: number) => ({ epoch: 1, taskId: "j/7", jobId: "j", index: 7, attempt: 1, incarnation, spec });
    assert.deepEqual(await runner.start(order(1000)), { created: true });
    await until("the first task to exit", () => runner.get("j/7")?.state === "exited", { timeoutMs: 5000, intervalMs: 25 });
    assert.deepEqual(await runner.start(order(1000)), { created: false }, "the same order again starts nothing");
    runner.markRecorded(["j/7#1"]);
    assert.deepEqual(await runner.start(order(2000)), { created: true }, "another incarnation's attempt 1 is new");
    assert.equal(runner.get("j/7")?.dispatch.incarnation, 2000);
    await until("the second task to exit", () => runner.get("j/7")?.state === "exited" && runner.get("j/7")?.dispatch.incarnation === 2000, { timeoutMs: 5000, intervalMs: 25 });
    assert.equal((await readRecord(runner.dirOf("j/7", 1)))?.dispatch.incarnation, 2000, "the directory holds the new task's record only");
    assert.deepEqual(runner.report({ forPrimary: true }).filter((t) => t.taskId === "j/7").map((t) => [t.attempt, t.incarnation]), [[1, 2000]]);
  });

  test("an acknowledgement of another attempt does not hide the current one", async () => {
    await runToExit("j/2", 2);
    runner.markRecorded(["j/2#1", "nope#1", "malformed"]);
    assert.ok(runner.report({ forPrimary: true }).some((t) => t.taskId === "j/2" && t.attempt === 2));
  });
});

describe("agent: a device instance is held by one live task at a time", () => {
  let dir: string;
  let runner: TaskRunner;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "torca-runner-devices-"));
    runner = runnerIn(
      dir,
      1,
      new AgentDevices([
        { name: "example/fpga", shareable: false, paths: [], instances: [{ id: "fpga-0", attributes: {}, paths: [] }] },
        { name: "example/vf", shareable: true, paths: [], instances: [{ id: "vf-0", attributes: {}, paths: [] }] },
      ]),
    );
  });
  after(async () => {
    for (const r of runner.all()) if (r.state !== "exited") await runner.stop(r.dispatch.taskId, r.dispatch.attempt, 0);
    await until("every task to exit", () => runner.all().every((r) => r.state === "exited"), { timeoutMs: 10_000, intervalMs: 25 });
    await rm(dir, { recursive: true, force: true });
  });

  const sleeper = parseTaskFile("name: d\ntype: batch\nisolation: process\ncommand: [/bin/sleep, '30']\n");
  const start = (index: number, device: string, id: string) => runner.start({ epoch: 1, taskId: `d/${index}`, jobId: "d", index, attempt: 1, spec: sleeper, devices: [{ name: device, ids: [id] }] });
  const stateOf = (index: number) => runner.get(`d/${index}`)?.state;

  test("a task given an instance a running task still holds (a preemption's victim in its grace) starts once that task has exited", async () => {
    await start(0, "example/fpga", "fpga-0");
    await until("the holder to run", () => stateOf(0) === "running", { timeoutMs: 5000, intervalMs: 25 });
    await start(1, "example/fpga", "fpga-0");
    // A task without devices dispatched after it runs: the newcomer had every chance to start, and did not.
    await runner.start({ epoch: 1, taskId: "d/9", jobId: "d", index: 9, attempt: 1, spec: sleeper });
    await until("a task without devices to run", () => stateOf(9) === "running", { timeoutMs: 5000, intervalMs: 25 });
    assert.equal(stateOf(1), "starting", "waits while the holder runs");
    await runner.stop("d/0", 1, 0);
    await until("the newcomer to run after the holder exited", () => stateOf(1) === "running", { timeoutMs: 5000, intervalMs: 25 });
    assert.equal(stateOf(0), "exited");
  });

  test("a shareable device does not make anyone wait", async () => {
    await start(2, "example/vf", "vf-0");
    await start(3, "example/vf", "vf-0");
    await until("both sharers to run", () => stateOf(2) === "running" && stateOf(3) === "running", { timeoutMs: 5000, intervalMs: 25 });
  });
});
