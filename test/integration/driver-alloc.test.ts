/**
 * Allocs under the process driver against real processes and real cgroup v1
 * (root only): the parent cgroup holds the alloc's limits, the members'
 * children none unless capped, members share the alloc's memory, and an OOM
 * kill is told against the member it hit. Every alloc started here is stopped
 * and destroyed in `after`, even on failure.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessDriver } from "../../agent/driver/process.js";
import type { MemberLaunch, TaskHandle } from "../../agent/driver/driver.js";
import { readExitRecord } from "../../agent/driver/exit-record.js";
import { until } from "../harness/wait.js";
import { ALLOC_MEMBERS_MIB, holdMember, idleMember, pushMember } from "../harness/alloc-members.js";
import { stopAndDestroyAll } from "../harness/driver-tasks.js";

const isRoot = process.getuid?.() === 0;
const scratch = await mkdtemp(join(tmpdir(), "torca-alloc-"));
const driver = new ProcessDriver();
const started: TaskHandle[] = [];
let seq = 0;
const MiB = 1024 ** 2;

async function startAlloc(members: MemberLaunch[], memory: number): Promise<TaskHandle> {
  const taskDir = join(scratch, `alloc-${++seq}`);
  await mkdir(taskDir, { recursive: true });
  const h = await driver.start({ taskId: `atest/${seq}`, attempt: 1, command: [], taskDir, env: {}, resources: { cpu: 1, memory, disk: 0 }, members });
  started.push(h);
  return h;
}

async function fileText(path: string): Promise<string> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return "";
  }
}

const memLimit = (cgroup: string) => fileText(`/sys/fs/cgroup/memory/torca/${cgroup}/memory.limit_in_bytes`);

after(async () => {
  await stopAndDestroyAll(driver, started);
  await rm(scratch, { recursive: true, force: true });
});

describe("allocs under the process driver", () => {
  test("a batch alloc succeeds when every member exits 0; each member has its own logs", async () => {
    const h = await startAlloc(
      [
        { name: "one", command: ["/bin/sh", "-c", "echo one:$TORCA_MEMBER"], env: {} },
        { name: "two", command: ["/bin/sh", "-c", "sleep 0.3; echo two >&2"], env: { EXTRA: "x" } },
      ],
      64 * MiB,
    );
    const exit = await driver.wait(h);
    assert.deepEqual(exit, { exitCode: 0, signal: null, oomKilled: false, reason: "exit 0 (all 2 tasks)" });
    assert.equal(await fileText(join(h.taskDir, "members", "one", "stdout")), "one:one");
    assert.equal(await fileText(join(h.taskDir, "members", "two", "stderr")), "two");
    const states = await driver.memberStates(h);
    assert.deepEqual(states.map((m) => [m.name, m.state, m.exit?.exitCode]), [["one", "exited", 0], ["two", "exited", 0]]);
  });

  test("a failing member fails the alloc and stops the others, which say why", async () => {
    const h = await startAlloc(
      [
        { name: "app", command: ["/bin/sleep", "600"], env: {} },
        { name: "broken", command: ["/bin/sh", "-c", "sleep 0.3; exit 3"], env: {} },
      ],
      64 * MiB,
    );
    const exit = await driver.wait(h);
    assert.deepEqual(exit, { exitCode: 3, signal: null, oomKilled: false, reason: "task broken: exit 3" });
    const states = await driver.memberStates(h);
    assert.equal(states[0]!.state, "exited");
    assert.match(states[0]!.exit!.reason, /^stopped after task broken failed \(killed by SIGTERM\)$/);
    assert.equal(await driver.recover(h), "exited");
  });

  test("an alloc stopped on request stops every member; none is said to be stopped because of another", async () => {
    const h = await startAlloc(
      [
        { name: "a", command: ["/bin/sh", "-c", "echo up; exec sleep 600"], env: {} },
        { name: "b", command: ["/bin/sh", "-c", "echo up; exec sleep 600"], env: {} },
      ],
      64 * MiB,
    );
    const exited = driver.wait(h);
    for (const name of ["a", "b"]) await until(`${name} is up`, async () => (await fileText(join(h.taskDir, "members", name, "stdout"))) === "up", { timeoutMs: 10_000 });
    await driver.stop(h, 2000);
    assert.equal((await exited).signal, "SIGTERM");
    for (const m of await driver.memberStates(h)) assert.equal(m.exit?.reason, "killed by SIGTERM", JSON.stringify(m));
  });

  test("a member that failed while the agent was down: a restarted agent applies the rules to it (the others are stopped then)", async () => {
    const h = await startAlloc(
      [
        { name: "app", command: ["/bin/sleep", "600"], env: {} },
        { name: "broken", command: ["/bin/sh", "-c", "exit 4"], env: {} },
      ],
      64 * MiB,
    );
    await until("broken's exit is recorded by its wrapper", async () => (await readExitRecord(join(h.taskDir, "members", "broken")))?.code === 4, { timeoutMs: 10_000 });
    const restarted = new ProcessDriver();
    // The handle as the runner persists it in the task's record.
    const persisted = JSON.parse(JSON.stringify(h)) as TaskHandle;
    assert.equal(await restarted.recover(persisted), "running", "app still runs");
    const exit = await restarted.wait(persisted);
    assert.equal(exit.reason, "task broken: exit 4");
    const states = await restarted.memberStates(persisted);
    assert.match(states.find((m) => m.name === "app")!.exit!.reason, /^stopped after task broken failed/);
  });

  test("members share the alloc's memory: one holds more than a third while the others idle; the member pushing past the limit is the one OOM-killed", { skip: isRoot ? false : "needs root for cgroups" }, async () => {
    const h = await startAlloc([holdMember("big"), idleMember("idle"), pushMember("pusher")], ALLOC_MEMBERS_MIB.alloc * MiB);
    assert.ok(h.cgroup && h.members?.every((m) => m.cgroup === `${h.cgroup}/${m.name}`), JSON.stringify(h));
    assert.equal(await memLimit(h.cgroup), String(ALLOC_MEMBERS_MIB.alloc * MiB), "the alloc's parent cgroup has the limit");
    for (const m of h.members!) assert.ok(Number(await memLimit(m.cgroup!)) > 2 ** 60, `member ${m.name} has no limit of its own`);
    await until("big holds its memory", async () => (await fileText(join(h.taskDir, "members", "big", "stdout"))) === "held", { timeoutMs: 30_000 });
    const usage = (await driver.inspect(h)).usage!;
    assert.ok(usage.memoryBytes > (ALLOC_MEMBERS_MIB.alloc * MiB) / 3, `the alloc holds ${usage.memoryBytes} bytes, more than a third of its limit`);
    assert.ok((await driver.memberStates(h)).every((m) => m.state === "running"), "every member still runs");

    await writeFile(join(h.taskDir, "work", "push"), "");
    const exit = await driver.wait(h);
    assert.equal(exit.oomKilled, true, JSON.stringify(exit));
    assert.equal(exit.reason, "task pusher: oom-killed");
    const states = Object.fromEntries((await driver.memberStates(h)).map((m) => [m.name, m.exit!]));
    assert.equal(states.pusher!.oomKilled, true, JSON.stringify(states));
    assert.equal(states.big!.oomKilled, false, JSON.stringify(states));
    assert.equal(states.idle!.oomKilled, false, JSON.stringify(states));
    const final = await driver.finalUsage(h);
    assert.equal(final?.oomKills, 1, `the alloc's own count includes its member's kill: ${JSON.stringify(final)}`);
    assert.ok(final.memoryPeakBytes! <= ALLOC_MEMBERS_MIB.alloc * MiB, JSON.stringify(final));
  });

  test("a member's own cap is set on its child cgroup", { skip: isRoot ? false : "needs root for cgroups" }, async () => {
    const h = await startAlloc([idleMember("free"), { ...idleMember("capped"), resources: { memory: 32 * MiB, cpu: 0.5 } }], 128 * MiB);
    const [free, capped] = h.members!;
    assert.equal(await memLimit(capped!.cgroup!), String(32 * MiB));
    assert.equal(await fileText(`/sys/fs/cgroup/cpu/torca/${capped!.cgroup!}/cpu.cfs_quota_us`), "50000");
    assert.equal(await fileText(`/sys/fs/cgroup/cpu/torca/${free!.cgroup!}/cpu.cfs_quota_us`), "-1");
    assert.equal(await fileText(`/sys/fs/cgroup/cpu/torca/${h.cgroup!}/cpu.cfs_quota_us`), "100000");
    await driver.stop(h, 0);
    await driver.destroy(h);
    assert.equal(await fileText(`/sys/fs/cgroup/memory/torca/${h.cgroup!}/memory.limit_in_bytes`), "", "destroy removes the parent and the children");
  });
});
