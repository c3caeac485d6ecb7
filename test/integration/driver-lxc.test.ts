/**
 * The lxc driver against real LXC (lxc-execute) and cgroup v1; needs root.
 * Every container started here is stopped and destroyed in `after`, even on failure.
 */
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LxcDriver } from "../../agent/driver/lxc.js";
import type { TaskHandle, TaskLaunch } from "../../agent/driver/driver.js";
import { never, until } from "../harness/wait.js";

const isRoot = process.getuid?.() === 0;
const hasLxc = spawnSync("sh", ["-c", "command -v lxc-execute"]).status === 0;
const skip = !isRoot ? "lxc driver tests need root" : !hasLxc ? "lxc-execute not installed (apt-get install lxc)" : false;

const scratch = await mkdtemp(join(tmpdir(), "torca-lxc-"));
const baseDir = join(scratch, "lxc");
const driver = new LxcDriver({ baseDir });
const started: TaskHandle[] = [];
const helperPids: number[] = [];
let seq = 0;

async function launchOf(command: string[], extra: Partial<TaskLaunch> = {}): Promise<TaskLaunch> {
  const taskDir = join(scratch, `task-${++seq}`);
  await mkdir(taskDir, { recursive: true });
  return { taskId: `ltest/${seq}`, attempt: 1, command, taskDir, env: {}, resources: { cpu: 0, memory: 256 * 1024 * 1024, disk: 0 }, ...extra };
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
  for (const h of started) {
    try {
      await driver.stop(h, 0);
      await driver.destroy(h);
    } catch (e) {
      console.error(`cleanup of ${h.containerName ?? h.taskDir} failed:`, e);
    }
  }
  await rm(scratch, { recursive: true, force: true });
});

describe("lxc driver", { skip }, () => {
  test("fingerprint: available as root with lxc installed", async () => {
    const fp = await driver.fingerprint();
    assert.equal(fp.available, true, fp.reason);
    assert.equal(fp.attributes["driver.lxc"], "1");
    assert.match(fp.attributes["lxc.version"] ?? "", /^\d+\.\d+/);
  });

  test("records exit 3; env is exactly the given one; runs as 1000:1000 in /pkg with its own hostname", async () => {
    const pkg = join(scratch, "pkg");
    await mkdir(join(pkg, "bin"), { recursive: true });
    await writeFile(join(pkg, "bin", "run.sh"), '#!/bin/sh\necho "hi $GREETING"\npwd\nid -u; id -g\nhostname\nenv | sort > /task/work/env.txt\nexit 3\n', { mode: 0o755 });
    const h = await startTask(["bin/run.sh"], { packageDir: pkg, env: { GREETING: "from torca" }, taskId: "ns:web/3" });
    const exit = await driver.wait(h);
    assert.deepEqual(exit, { exitCode: 3, signal: null, oomKilled: false, reason: "exit 3" }, await fileText(join(h.taskDir, "stderr")));
    assert.equal(await fileText(join(h.taskDir, "stdout")), "hi from torca\n/pkg\n1000\n1000\nns-web-3\n");
    const envNames = (await fileText(join(h.taskDir, "work", "env.txt"))).trim().split("\n").map((l) => l.split("=")[0]);
    // LXC itself adds `container`; the shell adds PWD.
    assert.deepEqual(envNames.filter((n) => n !== "PWD" && n !== "container").sort(), ["GREETING", "PATH"]);
    assert.equal(await driver.recover(h), "exited");
  });

  test("the task sees only its own processes", async () => {
    const h = await startTask(["sh", "-c", "ls /proc | grep -c '^[0-9]'"]);
    assert.equal((await driver.wait(h)).exitCode, 0);
    const count = Number((await fileText(join(h.taskDir, "stdout"))).trim());
    // init, sh, ls, grep
    assert.ok(count >= 2 && count <= 6, `saw ${count} pids`);
  });

  test("writes outside the work dir fail with EROFS; /task/work and /tmp are writable", async () => {
    const h = await startTask(["sh", "-c", "for p in /x /usr/x /etc/x /pkg/x; do touch $p 2>&1 || true; done; touch /task/work/ok /tmp/ok && echo writable"]);
    assert.equal((await driver.wait(h)).exitCode, 0);
    const out = await fileText(join(h.taskDir, "stdout"));
    assert.equal(out.match(/Read-only file system/g)?.length, 4, out);
    assert.match(out, /writable/);
    await access(join(h.taskDir, "work", "ok"));
  });

  test("the task's device nodes are bound in at their host path; other host devices stay out", async () => {
    const h = await startTask(["sh", "-c", "stat -c '%F %t:%T' /dev/loop-control; test -e /dev/fuse && echo fuse-present || echo fuse-absent"], { devicePaths: ["/dev/loop-control"] });
    assert.equal((await driver.wait(h)).exitCode, 0);
    // loop-control is 10:237 (hex a:ed); /dev/fuse, on most hosts too, was not asked for.
    assert.deepEqual((await fileText(join(h.taskDir, "stdout"))).trim().split("\n"), ["character special file a:ed", "fuse-absent"]);
    assert.match(await fileText(join(h.taskDir, "lxc.conf")), /^lxc\.cgroup\.devices\.allow = c 10:237 rwm$/m);
  });

  test("network none: only lo, and it is up", async () => {
    const h = await startTask(["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; cat /sys/class/net/lo/flags"], { network: "none" });
    assert.equal((await driver.wait(h)).exitCode, 0);
    const out = (await fileText(join(h.taskDir, "stdout"))).trim().split("\n");
    assert.deepEqual(out, ["lo", "0x9"], `interfaces, then lo flags (0x9 = UP|LOOPBACK): ${out.join(",")}`);
  });

  test("a task over its memory limit is reported oom-killed", async () => {
    const h = await startTask(["node", "-e", "const a=[]; for (let i=0;i<512;i++) a.push(Buffer.alloc(1<<20, 1)); console.log('survived')"], {
      resources: { cpu: 1, memory: 64 * 1024 * 1024, disk: 0 },
    });
    const exit = await driver.wait(h);
    assert.equal(exit.oomKilled, true, JSON.stringify(exit));
    assert.equal(exit.reason, "oom-killed");
    assert.equal(exit.signal, "SIGKILL");
    const usage = await driver.finalUsage(h);
    assert.ok((usage?.oomKills ?? 0) >= 1);
    assert.ok((usage?.memoryPeakBytes ?? Infinity) <= 64 * 1024 * 1024);
    assert.doesNotMatch(await fileText(join(h.taskDir, "stdout")), /survived/);
  });

  test("a fork bomb is bounded by pids.max and the host is fine", async () => {
    const pidsMax = 32;
    const h = await startTask(["sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 3; exit 0"], { pidsMax, resources: { cpu: 0.5, memory: 256 * 1024 * 1024, disk: 0 } });
    let maxPids = 0;
    await never("more than pids.max processes in the container", async () => {
      const u = (await driver.inspect(h)).usage;
      if (u) maxPids = Math.max(maxPids, u.pids);
      return u && u.pids > pidsMax && u;
    }, 2000);
    assert.ok(maxPids > 0, `the container's pids were read (peak ${maxPids})`);
    assert.equal(spawnSync("true").status, 0, "the host can still fork");
    await driver.stop(h, 0);
    await driver.wait(h);
    assert.match(await fileText(join(h.taskDir, "stderr")), /fork/i, "the task saw fork failures");
    assert.equal((await driver.inspect(h)).running, false);
  });

  test("cpu quota: a busy loop with 0.5 cores gets about half of the wall time", async () => {
    const wallMs = 2000;
    const h = await startTask(["node", "-e", `const e=Date.now()+${wallMs}; while (Date.now()<e);`], { resources: { cpu: 0.5, memory: 256 * 1024 * 1024, disk: 0 } });
    assert.equal((await driver.wait(h)).exitCode, 0);
    const cpuNs = (await driver.finalUsage(h))?.cpuNs ?? 0;
    const share = cpuNs / 1e6 / wallMs;
    assert.ok(share > 0.3 && share < 0.75, `cpu share ${share.toFixed(2)} of one core`);
  });

  test("inspect reads usage from the container's cgroup while it runs", async () => {
    const h = await startTask(["sh", "-c", "echo ready; sleep 5"]);
    await until("task ready", async () => (await fileText(join(h.taskDir, "stdout"))).includes("ready"));
    const r = await driver.inspect(h);
    assert.equal(r.running, true);
    assert.ok(r.usage && r.usage.pids >= 2 && r.usage.memoryBytes > 0 && r.usage.cpuNs > 0, JSON.stringify(r.usage));
    await driver.stop(h, 0);
  });

  test("exec runs beside the task inside its container: its namespaces, hostname, user, cwd and environment only", async () => {
    const h = await startTask(["sh", "-c", "echo ready; sleep 30"], { env: { GREETING: "hi" } });
    await until("task ready", async () => (await fileText(join(h.taskDir, "stdout"))).includes("ready"));
    const cmd = driver.execCommand(h, { command: ["sh", "-c", "id -u; id -g; hostname; pwd; echo $GREETING; env | cut -d= -f1 | sort | tr '\\n' ' '; echo; ps -e -o comm= | sort | tr '\\n' ' '"], env: { GREETING: "hi" }, user: { uid: 1000, gid: 1000 } });
    const r = spawnSync(cmd.file, cmd.args, { env: cmd.env, encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const [uid, gid, hostname, cwd, greeting, envNames, processes] = r.stdout.split("\n");
    assert.deepEqual([uid, gid, cwd, greeting], ["1000", "1000", "/task/work", "hi"]);
    assert.match(hostname!, /^ltest/, "the container's hostname, not the host's");
    // Besides the task's own: what sh sets (PWD, OLDPWD, SHLVL) and LXC's marker `container`.
    const extra = envNames!.trim().split(" ").filter((n) => !["GREETING", "PATH", "PWD", "OLDPWD", "SHLVL", "container"].includes(n));
    assert.deepEqual(extra, [], "the task's environment, nothing of the agent's");
    assert.ok(processes!.includes("sleep") && !processes!.includes("node"), `the container's processes only: ${processes}`);
    await driver.stop(h, 0);
  });

  test("stop honours a grace longer than lxc-stop's 1 s: a 2 s TERM handler keeps its exit code", async () => {
    const h = await startTask(["sh", "-c", 'trap "sleep 2; echo cleaned; exit 7" TERM; echo ready; while :; do sleep 0.05; done']);
    await until("task ready", async () => (await fileText(join(h.taskDir, "stdout"))).includes("ready"));
    await driver.stop(h, 6000);
    const exit = await driver.wait(h);
    assert.equal(exit.exitCode, 7, JSON.stringify(exit));
    assert.match(await fileText(join(h.taskDir, "stdout")), /cleaned/);
  });

  test("stop SIGKILLs after the grace: recorded as killed by SIGKILL", async () => {
    const h = await startTask(["sh", "-c", 'trap "" TERM; echo ready; while :; do sleep 0.05; done']);
    await until("task ready", async () => (await fileText(join(h.taskDir, "stdout"))).includes("ready"));
    await driver.stop(h, 300);
    const exit = await driver.wait(h);
    assert.equal(exit.signal, "SIGKILL", JSON.stringify(exit));
  });

  test("a container survives SIGKILL of the agent; a new driver recovers it and records its exit", async () => {
    const taskDir = join(scratch, "recovered");
    await mkdir(taskDir);
    const moduleUrl = new URL("../../agent/driver/lxc.js", import.meta.url).href;
    const agentScript = join(scratch, "fake-agent.mjs");
    await writeFile(
      agentScript,
      `import { LxcDriver } from ${JSON.stringify(moduleUrl)};
const h = await new LxcDriver({ baseDir: ${JSON.stringify(baseDir)} }).start({ taskId: "ltest/recovered", attempt: 4, taskDir: ${JSON.stringify(taskDir)},
  command: ["sh", "-c", "echo started; sleep 2; echo done; exit 6"], env: {}, resources: { cpu: 0.5, memory: 128 << 20, disk: 0 } });
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

    const restarted = new LxcDriver({ baseDir });
    assert.equal(await restarted.recover(persisted), "running");
    assert.ok((await restarted.runningContainers()).includes(persisted.containerName ?? "?"));
    const exit = await restarted.wait(persisted);
    assert.equal(exit.exitCode, 6);
    assert.equal(await fileText(join(taskDir, "stdout")), "started\ndone\n");
    assert.equal(await restarted.recover(persisted), "exited");
    await restarted.destroy(persisted);
    assert.ok(!(await restarted.runningContainers()).includes(persisted.containerName ?? "?"));
  });

  test("a container that cannot start (same name already running) is reported with LXC's reason", async () => {
    const first = await startTask(["sh", "-c", "echo ready; sleep 5"], { taskId: "ltest/dup" });
    await until("first ready", async () => (await fileText(join(first.taskDir, "stdout"))).includes("ready"));
    const second = await startTask(["true"], { taskId: "ltest/dup" });
    const exit = await driver.wait(second);
    assert.equal(exit.exitCode, 1);
    assert.match(exit.reason, /^container failed to start: lxc-execute: /, exit.reason);
    assert.equal((await driver.inspect(first)).running, true, "the first one is unaffected");
    await driver.stop(first, 0);
  });
});
