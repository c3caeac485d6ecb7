/**
 * Least privilege for tasks, with real processes. On a real cell (agent as
 * root, process driver): a task runs under a uid of its own from
 * agent.taskUsers, cannot read the cell's token, the agent's state or another
 * task's directory, nor signal another task; two tasks hold different uids,
 * and a restarted agent does not hand out the uid of a task still running.
 * On a task runner: `user: root` is refused without agent.allowRootTasks and
 * runs as root with it.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LxcDriver } from "../../agent/driver/lxc.js";
import { instanceName } from "../../agent/driver/names.js";
import { ProcessDriver } from "../../agent/driver/process.js";
import { PackageCache } from "../../agent/packages/cache.js";
import { PortAllocator } from "../../agent/tasks/ports.js";
import { TaskRunner, type TaskRecord } from "../../agent/tasks/runner.js";
import { TaskUsers } from "../../agent/tasks/task-users.js";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { createLogger } from "../../src/common/logger.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? "tasks switch users only under a root agent" : zookeeperInstalled() ? false : "ZooKeeper is not installed";
const FIRST_UID = 70000;

describe("tasks run under uids of their own, and reach nothing of the agent's or of other tasks", { skip, timeout: 300_000 }, () => {
  let tc: TestCell;
  let agentDir: string;

  before(async () => {
    tc = await startTestCell({ managers: 1, agents: 1, sessionTimeout: "8s" });
    agentDir = join(tc.cell.dir, "agent-1");
  });

  after(async () => {
    await tc?.close();
  });

  const logsOf = async (taskId: string) => tc.api.get(`${await tc.primaryUrl()}/v1/tasks/${encodeURIComponent(taskId)}/logs?stream=stdout`).text();

  /** Runs a batch job to completion; its stdout. */
  async function run(name: string, script: string): Promise<string> {
    const { id } = await tc.submit(batchJob(name, ["/bin/sh", "-c", script], "restart: { attempts: 0 }\n"));
    const j = await tc.waitJob(id, (x) => x.taskList.length > 0 && x.taskList.every((t) => t.state === "completed" || t.state === "failed"), 60_000, "task finished");
    assert.equal(j.taskList[0]!.state, "completed", JSON.stringify(j.taskList[0]));
    return logsOf(`${id}/0`);
  }

  /** `key=value` lines of a probe's output. */
  const fields = (out: string) => Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

  let holder: { uid: number; pid: number; dir: string };

  it("a running task holds a uid from agent.taskUsers; its own dir is its alone", async () => {
    // A service that keeps its uid while the others run, with a secret in its work dir.
    await tc.submit(`name: holder\ntype: service\nisolation: process\ncommand: ["/bin/sh", "-c", "echo uid=$(id -u); echo pid=$$; echo secret > secret; exec sleep 600"]\nresources: { cpu: 0.1, memory: 32MiB }\n`);
    const out = await until("holder started", async () => {
      const text = await logsOf("holder/0");
      return text.includes("pid=") && text;
    }, { timeoutMs: 60_000 });
    const f = fields(out);
    holder = { uid: Number(f.uid), pid: Number(f.pid), dir: join(agentDir, "tasks", instanceName("holder/0", 1)) };
    assert.ok(holder.uid >= FIRST_UID && holder.uid < FIRST_UID + 10_000, `uid ${holder.uid} is from agent.taskUsers`);
  });

  it("a process task is not root and gets permission denied on the token, the agent's state and another task's dir and process", async () => {
    const token = tc.cell.tokenFile;
    const probe = [
      "echo uid=$(id -u) gid=$(id -g) groups=$(id -G)",
      `for f in ${token} ${join(agentDir, "zk-session.json")} ${join(agentDir, "epoch")} ${join(holder.dir, "stdout")} ${join(holder.dir, "record.json")} ${join(holder.dir, "work", "secret")} ${join(tc.cell.dir, "agent-1.json")}; do echo "read $f=$(cat $f 2>&1)"; done`,
      `for d in ${agentDir} ${join(agentDir, "tasks")} ${holder.dir} ${join(holder.dir, "work")} ${tc.cell.dir} ${join(tc.cell.dir, "storage")} ${join(tc.cell.dir, "zookeeper")}; do echo "list $d=$(ls $d 2>&1)"; done`,
      `echo "kill=$(kill -0 ${holder.pid} 2>&1)"`,
      `echo "write=$(touch ${join(agentDir, "tasks", "x")} 2>&1)"`,
    ].join("\n");
    const out = await run("probe", probe);
    const lines = out.trim().split("\n");
    const [idLine, ...attempts] = lines;
    const uid = Number(/uid=(\d+)/.exec(idLine!)?.[1]);
    assert.ok(uid >= FIRST_UID && uid !== holder.uid, `${idLine}: not root, not the holder's uid ${holder.uid}`);
    assert.match(idLine!, new RegExp(`gid=${uid} groups=${uid}$`), "its own group, no supplementary groups");
    assert.equal(attempts.length, 7 + 7 + 2);
    for (const line of attempts) {
      const expected = line.startsWith("kill=") ? /Operation not permitted/ : /Permission denied/;
      assert.match(line, expected, line);
    }
  });

  it("a restarted agent keeps the running task's uid held, and hands out another", async () => {
    await tc.cell.stopDaemon("agent-1", "SIGKILL");
    const agent = tc.cell.startDaemon("agent-1");
    // Its znode outlives a quick restart: wait for the agent itself to have re-adopted its tasks.
    await until("agent-1 re-adopted holder/0", async () => {
      const { tasks } = await tc.api.get(`${agent.url}/v1/status`).json<{ tasks: { taskId: string; state: string }[] }>();
      return tasks.some((t) => t.taskId === "holder/0" && t.state === "running");
    }, { timeoutMs: 60_000 });
    const uid = Number(fields(await run("after-restart", "echo uid=$(id -u)")).uid);
    assert.ok(uid >= FIRST_UID, `uid ${uid}`);
    assert.notEqual(uid, holder.uid, "the holder's uid is still held after the restart");
    const still = fields(await logsOf("holder/0"));
    assert.equal(Number(still.pid), holder.pid, "the holder kept running through the restart");
  });
});

describe("user: root needs agent.allowRootTasks", { skip: isRoot ? false : "needs root", timeout: 120_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "torca-root-tasks-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function runnerOn(sub: string, allowRootTasks: boolean): TaskRunner {
    const log = createLogger("test");
    return new TaskRunner({
      dataDir: join(dir, sub),
      nodeId: sub,
      host: "127.0.0.1",
      drivers: { process: new ProcessDriver({ useCgroups: false }) },
      cache: new PackageCache({ cacheDir: join(dir, sub, "packages"), maxBytes: 1 << 20, sources: { managerUrls: () => [], token: "" }, logger: log }),
      ports: new PortAllocator([41100, 41110], "127.0.0.1"),
      users: new TaskUsers({ uids: { first: FIRST_UID, last: FIRST_UID + 9 }, allowRootTasks, nodeId: sub }),
      log,
    });
  }

  async function runAsRoot(runner: TaskRunner): Promise<TaskRecord> {
    await runner.recover();
    const spec = { ...parseTaskFile('name: r\ntype: batch\nisolation: process\ncommand: ["/bin/sh", "-c", "id -u"]\n'), user: "root" as const };
    await runner.start({ epoch: 1, taskId: "r/0", jobId: "r", index: 0, attempt: 1, spec });
    await until("task exited", () => runner.get("r/0")?.state === "exited", { timeoutMs: 20_000 });
    return runner.get("r/0")!;
  }

  it("is refused, with the reason, by an agent that does not opt in", async () => {
    const r = await runAsRoot(runnerOn("plain", false));
    assert.equal(r.startedAt, undefined, "never started");
    assert.match(r.exit!.reason, /failed to start: task r\/0 asks for user root, and agent plain does not run tasks as root \(agent\.allowRootTasks is false\)/);
  });

  it("runs as root on an agent that opts in", async () => {
    const r = await runAsRoot(runnerOn("opted-in", true));
    assert.equal(r.exit!.exitCode, 0, r.exit!.reason);
    assert.deepEqual(r.user, { uid: 0, gid: 0 });
    assert.equal(await readFile(join(r.dir, "stdout"), "utf8"), "0\n");
  });
});

const hasLxc = spawnSync("sh", ["-c", "command -v lxc-execute"]).status === 0;

describe("LXC tasks run under uids of their own too", { skip: !isRoot ? "needs root" : !hasLxc ? "lxc-execute not installed" : false, timeout: 120_000 }, () => {
  let dir: string;
  let runner: TaskRunner;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "torca-lxc-users-"));
    const log = createLogger("test");
    const lxc = new LxcDriver({ baseDir: join(dir, "lxc") });
    if (!(await lxc.fingerprint()).available) return;
    runner = new TaskRunner({
      dataDir: join(dir, "agent"),
      nodeId: "lxc-node",
      host: "127.0.0.1",
      drivers: { lxc, process: new ProcessDriver({ useCgroups: false }) },
      cache: new PackageCache({ cacheDir: join(dir, "agent", "packages"), maxBytes: 1 << 20, sources: { managerUrls: () => [], token: "" }, logger: log }),
      ports: new PortAllocator([41200, 41210], "127.0.0.1"),
      users: new TaskUsers({ uids: { first: FIRST_UID, last: FIRST_UID + 9 }, allowRootTasks: false, nodeId: "lxc-node" }),
      log,
    });
    await runner.recover();
  });
  after(async () => {
    for (const r of runner?.all() ?? []) await runner.stop(r.dispatch.taskId, r.dispatch.attempt, 0).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("two concurrent containers run as two different non-root uids, each writing its own work dir", async (t) => {
    if (!runner) return t.skip("the lxc driver is not available here");
    const script = "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); touch /task/work/mine && echo wrote; ls -ld /task/work | cut -c1-10; sleep 1";
    const spec = parseTaskFile(`name: l\ntype: batch\nisolation: lxc\ncommand: ["/bin/sh", "-c", ${JSON.stringify(script)}]\nresources: { cpu: 0.1, memory: 64MiB }\n`);
    for (const i of [0, 1]) await runner.start({ epoch: 1, taskId: `l/${i}`, jobId: "l", index: i, attempt: 1, spec });
    await until("both exited", () => runner.all().every((r) => r.state === "exited"), { timeoutMs: 60_000 });
    const uids = new Set<number>();
    for (const r of runner.all()) {
      assert.equal(r.exit!.exitCode, 0, `${r.dispatch.taskId}: ${r.exit!.reason} ${await readFile(join(r.dir, "stderr"), "utf8")}`);
      const out = await readFile(join(r.dir, "stdout"), "utf8");
      const uid = r.user!.uid;
      assert.ok(uid >= FIRST_UID);
      assert.equal(out, `uid=${uid} gid=${uid} groups=${uid}\nwrote\ndrwx------\n`);
      uids.add(uid);
    }
    assert.equal(uids.size, 2, "each container its own uid");
  });
});
