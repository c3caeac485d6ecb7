/**
 * The process driver against real processes (and real cgroup v1 when root).
 * Every task started here is stopped and destroyed in `after`, even on failure.
 */
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CgroupV1 } from "../../agent/driver/cgroup.js";
import { pooledCgroupPrefix } from "../../agent/driver/cgroup-pool.js";
import { readExitRecord } from "../../agent/driver/exit-record.js";
import { ProcessDriver } from "../../agent/driver/process.js";
import type { TaskHandle, TaskLaunch } from "../../agent/driver/driver.js";
import { until } from "../harness/wait.js";
import { stopAndDestroyAll } from "../harness/driver-tasks.js";

const isRoot = process.getuid?.() === 0;
const scratch = await mkdtemp(join(tmpdir(), "torca-pdrv-"));
const driver = new ProcessDriver();
const started: TaskHandle[] = [];
const helperPids: number[] = [];
let seq = 0;

async function launchOf(command: string[], extra: Partial<TaskLaunch> = {}): Promise<TaskLaunch> {
  const taskDir = join(scratch, `task-${++seq}`);
  await mkdir(taskDir, { recursive: true });
  return { taskId: `ptest/${seq}`, attempt: 1, command, taskDir, env: {}, resources: { cpu: 0, memory: 0, disk: 0 }, ...extra };
}

async function startTask(command: string[], extra: Partial<TaskLaunch> = {}): Promise<TaskHandle> {
  const h = await driver.start(await launchOf(command, extra));
  started.push(h);
  return h;
}

async function fileText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return "";
  }
}

after(async () => {
  for (const pid of helperPids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await stopAndDestroyAll(driver, started);
  await driver.close();
  await rm(scratch, { recursive: true, force: true });
});

describe("process driver", () => {
  test("fingerprint reports host attributes and whether tasks get cgroups", async () => {
    const fp = await driver.fingerprint();
    assert.equal(fp.available, true);
    assert.equal(fp.attributes.os, "linux");
    assert.ok(fp.attributes.kernel);
    assert.equal(fp.attributes["driver.process.cgroups"], isRoot ? "v1" : "none");
  });

  test("runs the command with exactly the given env, in the package dir, records exit 3 and logs to files", async () => {
    const pkg = join(scratch, "pkg");
    await mkdir(join(pkg, "bin"), { recursive: true });
    await writeFile(join(pkg, "bin", "run.sh"), '#!/bin/sh\necho "out $GREETING"\necho "err line" >&2\npwd\nenv | sort > "$OUT_ENV"\nexit 3\n');
    await chmod(join(pkg, "bin", "run.sh"), 0o755);
    const l = await launchOf(["bin/run.sh"], { packageDir: pkg });
    l.env = { GREETING: "hello world", OUT_ENV: join(l.taskDir, "env.txt") };
    const h = await driver.start(l);
    started.push(h);
    const exit = await driver.wait(h);
    assert.deepEqual(exit, { exitCode: 3, signal: null, oomKilled: false, reason: "exit 3" });
    assert.equal(await fileText(join(h.taskDir, "stdout")), `out hello world\n${pkg}\n`);
    assert.equal(await fileText(join(h.taskDir, "stderr")), "err line\n");
    const env = (await fileText(join(h.taskDir, "env.txt"))).trim().split("\n");
    const names = env.map((line) => line.split("=")[0]).filter((n) => n !== "PWD" && n !== "SHLVL" && n !== "_");
    assert.deepEqual(names.sort(), ["GREETING", "OUT_ENV", "PATH"]);
    assert.equal(await driver.recover(h), "exited");
  });

  test("without a package the cwd is taskDir/work; bare command names go through PATH", async () => {
    const h = await startTask(["pwd"]);
    assert.equal((await driver.wait(h)).exitCode, 0);
    assert.equal(await fileText(join(h.taskDir, "stdout")), join(h.taskDir, "work") + "\n");
  });

  test("a missing command exits 127 with the reason in stderr", async () => {
    const h = await startTask(["no-such-command-torca"]);
    const exit = await driver.wait(h);
    assert.equal(exit.exitCode, 127);
    assert.match(await fileText(join(h.taskDir, "stderr")), /no-such-command-torca/);
  });

  test("stop: a TERM handler that exits 7 within the grace keeps its code", async () => {
    const h = await startTask(["sh", "-c", 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done']);
    await until("task ready", async () => (await fileText(join(h.taskDir, "stdout"))).includes("ready"));
    // A grace far longer than any wait here: stop must return because the task exited, not because the grace ran out.
    let stopped = false;
    const stopping = driver.stop(h, 600_000).then(() => (stopped = true));
    await until("stop to return once the task exited", () => stopped, { timeoutMs: 30_000 });
    await stopping;
    const exit = await driver.wait(h);
    assert.equal(exit.exitCode, 7);
    assert.equal(exit.signal, null);
    assert.match(await fileText(join(h.taskDir, "stdout")), /got-term/);
  });

  test("stop: a task that does not exit on SIGTERM is SIGKILLed after the grace", async () => {
    // The task notes TERM and carries on; the ticks it writes after the note show the grace was given.
    const h = await startTask(["sh", "-c", 'trap "echo got-term" TERM; echo ready; while :; do echo tick; sleep 0.05; done']);
    await until("task ready", async () => (await fileText(join(h.taskDir, "stdout"))).includes("ready"));
    await driver.stop(h, 1000);
    assert.match(await fileText(join(h.taskDir, "stdout")), /got-term\ntick\n/, "TERM first, and the task ran on during the grace");
    const exit = await driver.wait(h);
    assert.equal(exit.signal, "SIGKILL");
    assert.equal(exit.reason, "killed by SIGKILL");
    assert.equal((await driver.inspect(h)).running, false);
  });

  test("signal() reaches the task's process group", async () => {
    const h = await startTask(["sh", "-c", 'trap "echo usr1; exit 4" USR1; echo ready; while :; do sleep 0.05; done']);
    await until("task ready", async () => (await fileText(join(h.taskDir, "stdout"))).includes("ready"));
    await driver.signal(h, "SIGUSR1");
    assert.equal((await driver.wait(h)).exitCode, 4);
  });

  test("a task survives SIGKILL of the agent that started it; a new driver recovers it and records its exit", async () => {
    const taskDir = join(scratch, "recovered");
    await mkdir(taskDir);
    const moduleUrl = new URL("../../agent/driver/process.js", import.meta.url).href;
    const agentScript = join(scratch, "fake-agent.mjs");
    await writeFile(
      agentScript,
      `import { ProcessDriver } from ${JSON.stringify(moduleUrl)};
const h = await new ProcessDriver().start({ taskId: "ptest/recovered", attempt: 2, taskDir: ${JSON.stringify(taskDir)},
  command: ["sh", "-c", "echo started; sleep 1.5; echo done; exit 5"], env: {}, resources: { cpu: 0.5, memory: 128 << 20, disk: 0 } });
process.stdout.write(JSON.stringify(h) + "\\n");
setInterval(() => {}, 1000);
`,
    );
    const agent = spawn(process.execPath, [agentScript], { stdio: ["ignore", "pipe", "inherit"] });
    if (agent.pid) helperPids.push(agent.pid);
    const line = await new Promise<string>((resolve, reject) => {
      let buf = "";
      agent.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        if (buf.includes("\n")) resolve(buf.split("\n")[0] ?? "");
      });
      agent.once("exit", (code) => reject(new Error(`fake agent exited early (${code})`)));
    });
    const persisted = JSON.parse(line) as TaskHandle;
    started.push(persisted);
    await until("task started", async () => (await fileText(join(taskDir, "stdout"))).includes("started"));
    agent.kill("SIGKILL");
    await new Promise((r) => agent.once("exit", r));

    const restarted = new ProcessDriver();
    assert.equal(await restarted.recover(persisted), "running");
    const running = await restarted.inspect(persisted);
    assert.equal(running.running, true);
    if (isRoot) assert.ok(running.usage && running.usage.pids >= 1, "usage read from the task's cgroup");
    const exit = await restarted.wait(persisted);
    assert.equal(exit.exitCode, 5);
    assert.equal(await fileText(join(taskDir, "stdout")), "started\ndone\n");
    assert.equal(await restarted.recover(persisted), "exited");
    if (isRoot && persisted.cgroup) {
      await restarted.destroy(persisted);
      await assert.rejects(readFile(`/sys/fs/cgroup/pids/torca/${persisted.cgroup}/cgroup.procs`), { code: "ENOENT" }, "an earlier process's cgroup is removed, not pooled");
    }
  });

  test("a handle whose wrapper is gone without an exit record is 'gone' and waits end as lost", async () => {
    const l = await launchOf(["true"]);
    const h: TaskHandle = { driver: "process", taskId: l.taskId, attempt: 1, taskDir: l.taskDir, pid: 2 ** 22 + 7, startedAt: Date.now() };
    assert.equal(await driver.recover(h), "gone");
    const exit = await driver.wait(h);
    assert.equal(exit.exitCode, null);
    assert.match(exit.reason, /lost/);
  });

  test("over its memory limit the task is reported oom-killed (cgroup v1, root only)", { skip: isRoot ? false : "needs root for cgroups" }, async () => {
    const h = await startTask([process.execPath, "-e", "const a=[]; for (;;) a.push(Buffer.alloc(1<<20, 1))"], { resources: { cpu: 1, memory: 64 * 1024 * 1024, disk: 0 } });
    const exit = await driver.wait(h);
    assert.equal(exit.oomKilled, true, `${JSON.stringify(exit)} ${await fileText(join(h.taskDir, "exit"))}`);
    assert.equal(exit.reason, "oom-killed");
    assert.equal(exit.signal, "SIGKILL");
    const usage = await driver.finalUsage(h);
    assert.ok(usage?.memoryPeakBytes !== undefined && usage.memoryPeakBytes <= 64 * 1024 * 1024, JSON.stringify(usage));
  });

  test("a finished task's cgroup goes to the next task with that task's limits, its counters started afresh (root only)", { skip: isRoot ? false : "needs root for cgroups" }, async () => {
    const first = await startTask([process.execPath, "-e", "const a=[]; for (;;) a.push(Buffer.alloc(1<<20, 1))"], { resources: { cpu: 0.5, memory: 48 * 1024 * 1024, disk: 0 } });
    assert.equal((await driver.wait(first)).oomKilled, true);
    await driver.destroy(first);
    const second = await startTask(["/bin/true"], { resources: { cpu: 0, memory: 96 * 1024 * 1024, disk: 0 } });
    assert.ok(first.cgroup && second.cgroup === first.cgroup, `reused ${first.cgroup}, got ${second.cgroup}`);
    const cg = (c: string, file: string): Promise<string> => fileText(`/sys/fs/cgroup/${c}/torca/${second.cgroup}/${file}`).then((t) => t.trim());
    assert.equal(await cg("memory", "memory.limit_in_bytes"), String(96 * 1024 * 1024));
    assert.equal(await cg("cpu", "cpu.cfs_quota_us"), "-1", "no cpu quota for cpu 0");
    const exit = await driver.wait(second);
    assert.deepEqual(exit, { exitCode: 0, signal: null, oomKilled: false, reason: "exit 0" });
    const usage = await driver.finalUsage(second);
    assert.equal(usage?.oomKills, 0, "the first task's OOM kill is not the second's");
    assert.ok(usage?.memoryPeakBytes !== undefined && usage.memoryPeakBytes < 24 * 1024 * 1024, `peak of /bin/true alone: ${JSON.stringify(usage)}`);
  });

  test("a cgroup whose cpu weight or quota was lowered while its task ran (reclamation) is not handed to the next task (root only)", { skip: isRoot ? false : "needs root for cgroups" }, async () => {
    const limits = { cpu: 0.5, memory: 64 * 1024 * 1024, disk: 0 };
    const throttled = await startTask(["/bin/true"], { resources: limits });
    await driver.wait(throttled);
    const cgroups = new CgroupV1();
    assert.ok(throttled.cgroup && (await cgroups.setCpuShares(throttled.cgroup, 2)) && (await cgroups.setCpuQuota(throttled.cgroup, 0.1)));
    await driver.destroy(throttled);
    const next = await startTask(["/bin/true"], { resources: limits });
    assert.notEqual(next.cgroup, throttled.cgroup);
    const cg = (file: string): Promise<string> => fileText(`/sys/fs/cgroup/cpu/torca/${next.cgroup}/${file}`).then((t) => t.trim());
    assert.equal(await cg("cpu.shares"), "1024");
    assert.equal(await cg("cpu.cfs_quota_us"), "50000");
    assert.equal((await driver.wait(next)).exitCode, 0);
  });

  test("a start that fails after taking a cgroup gives it back for the next task (root only)", { skip: isRoot ? false : "needs root for cgroups" }, async () => {
    // The launch fails right after the pool handed out a cgroup.
    class NamingFailsOnce extends CgroupV1 {
      failNext = false;
      override relative(name: string): string {
        if (!this.failNext) return super.relative(name);
        this.failNext = false;
        throw new Error("injected: the cgroup cannot be named");
      }
    }
    const cgroup = new NamingFailsOnce();
    const own = new ProcessDriver({ cgroup });
    const done = await own.start(await launchOf(["/bin/true"]));
    await own.wait(done);
    await own.destroy(done);
    cgroup.failNext = true;
    await assert.rejects(own.start(await launchOf(["/bin/true"])), /injected/);
    const next = await own.start(await launchOf(["/bin/true"]));
    assert.equal(next.cgroup, done.cgroup);
    assert.equal((await own.wait(next)).exitCode, 0);
    await own.destroy(next);
  });

  test("empty pooled cgroups an earlier agent process left behind are removed when the pool opens; busy ones stay (root only)", { skip: isRoot ? false : "needs root for cgroups" }, async () => {
    const scope = join(scratch, "earlier-agent");
    const prefix = pooledCgroupPrefix(scope);
    const stale = `${prefix}0badc0de-1`;
    const busy = `${prefix}0badc0de-2`;
    for (const c of ["memory", "pids", "cpu", "cpuacct"]) for (const n of [stale, busy]) await mkdir(`/sys/fs/cgroup/${c}/torca/${n}`, { recursive: true });
    const squatter = spawn("sleep", ["30"], { stdio: "ignore" });
    helperPids.push(squatter.pid!);
    await writeFile(`/sys/fs/cgroup/pids/torca/${busy}/cgroup.procs`, String(squatter.pid));
    try {
      const taskDir = join(scope, "t1");
      await mkdir(taskDir, { recursive: true });
      const h = await driver.start({ taskId: "ptest/earlier", attempt: 1, command: ["/bin/true"], taskDir, env: {}, resources: { cpu: 0, memory: 0, disk: 0 } });
      started.push(h);
      assert.notEqual(h.cgroup, stale);
      for (const c of ["memory", "pids", "cpu", "cpuacct"]) await assert.rejects(readFile(`/sys/fs/cgroup/${c}/torca/${stale}/cgroup.procs`), { code: "ENOENT" }, `${c} of the stale pooled cgroup removed`);
      assert.equal((await fileText(`/sys/fs/cgroup/pids/torca/${busy}/cgroup.procs`)).trim(), String(squatter.pid));
      assert.equal((await driver.wait(h)).exitCode, 0);
    } finally {
      squatter.kill("SIGKILL");
      await until("the squatter's cgroup is empty", async () => (await fileText(`/sys/fs/cgroup/pids/torca/${busy}/cgroup.procs`)) === "");
      for (const c of ["memory", "pids", "cpu", "cpuacct"]) await rmdir(`/sys/fs/cgroup/${c}/torca/${busy}`).catch(() => undefined);
    }
  });

  test("closing the driver (its agent stopping) removes the idle pooled cgroups; a running task keeps its own (root only)", { skip: isRoot ? false : "needs root for cgroups" }, async () => {
    const running = await startTask(["sleep", "30"]);
    const done = await startTask(["/bin/true"]);
    assert.equal((await driver.wait(done)).exitCode, 0);
    await driver.destroy(done);
    assert.ok(running.cgroup && done.cgroup && running.cgroup !== done.cgroup);
    await driver.close();
    for (const c of ["memory", "pids", "cpu", "cpuacct"]) await assert.rejects(readFile(`/sys/fs/cgroup/${c}/torca/${done.cgroup}/cgroup.procs`), { code: "ENOENT" }, `${c} of the idle cgroup removed`);
    assert.equal((await fileText(`/sys/fs/cgroup/pids/torca/${running.cgroup}/cgroup.procs`)).trim().split("\n").length, 1, "the running task's cgroup holds it still");
    await driver.stop(running, 0);
    await driver.destroy(running);
  });

  test("destroy kills what the task left behind; the emptied cgroup goes to the next task (root only)", { skip: isRoot ? false : "needs root for cgroups" }, async () => {
    const h = await startTask(["sh", "-c", "setsid sleep 30 & exit 0"]);
    assert.equal((await driver.wait(h)).exitCode, 0);
    assert.ok(h.cgroup);
    const cgDir = `/sys/fs/cgroup/pids/torca/${h.cgroup}`;
    assert.notEqual(await fileText(join(cgDir, "cgroup.procs")), "", "the orphaned sleep is still in the cgroup");
    await driver.destroy(h);
    assert.equal(await fileText(join(cgDir, "cgroup.procs")), "");
    const next = await startTask(["/bin/true"]);
    assert.equal(next.cgroup, h.cgroup);
    assert.equal((await driver.wait(next)).exitCode, 0);
  });

  test("the task leads its own process group, holds only its stdio, ignores no signal, and is its wrapper's child", async () => {
    const h = await startTask(["sh", "-c", 'ls /proc/$$/fd | tr "\\n" " "; echo; grep SigIgn /proc/$$/status; echo "pgid $(cut -d" " -f5 /proc/$$/stat) pid $$ ppid $PPID"']);
    assert.equal((await driver.wait(h)).exitCode, 0);
    const [fds, sigIgn, ids] = (await fileText(join(h.taskDir, "stdout"))).trim().split("\n");
    assert.equal(fds?.trim(), "0 1 2");
    assert.match(sigIgn ?? "", /^SigIgn:\s+0+$/);
    const m = /^pgid (\d+) pid (\d+) ppid (\d+)$/.exec(ids ?? "");
    assert.ok(m, ids);
    assert.equal(m[1], m[2], "pgid = pid");
    assert.equal(Number(m[3]), h.pid, "the wrapper is the task's parent");
  });

  test("the environment is exactly the given one, also with names bash treats specially or uses itself", async () => {
    const envs: Record<string, string>[] = [
      // Names of the wrapper's own variables.
      { d: "1", u: "nobody", r: "x", c: "y", e: "2", n: "3", w: "/", x: "env", o: "4" },
      { UID: "12", SHELLOPTS: "s", IFS: ":", GREETING: "a b" },
      // Values that need quoting on the launcher's one-line start order; the name of the wrapper's array of them.
      { MULTI: "a\nb 'q' \\ $x\r", torca_env: "mine" },
    ];
    for (const env of envs) {
      const h = await startTask(["/usr/bin/env", "-0"], { env });
      assert.equal((await driver.wait(h)).exitCode, 0);
      const lines = (await fileText(join(h.taskDir, "stdout"))).replace(/\0$/, "").split("\0").sort();
      assert.deepEqual(lines, Object.entries({ PATH: "/usr/local/bin:/usr/bin:/bin", ...env }).map(([k, v]) => `${k}=${v}`).sort());
    }
  });

  test("an exit record without its code line is not an exit yet", async () => {
    const dir = await mkdtemp(join(scratch, "record-"));
    await writeFile(join(dir, "exit"), "mem_peak=4096\n");
    assert.equal(await readExitRecord(dir), undefined);
    await writeFile(join(dir, "exit"), "mem_peak=4096\ncode=3\n");
    assert.equal((await readExitRecord(dir))?.code, 3);
  });
});
