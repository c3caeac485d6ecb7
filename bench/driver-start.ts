/**
 * Start latency and start throughput of the process and lxc drivers.
 *   node dist/bench/driver-start.js [runs=30]
 * Needs root for lxc (skipped otherwise). Prints median/p90 in ms:
 *   start()      the start() call until it returned (the task is spawned, detached)
 *   running      the start() call until the task's first stdout byte (it is running)
 *   lxc /bin/true  raw `lxc-execute … -- /bin/true` with the driver's config, spawn to exit
 * and the throughput of starting many `true` tasks (start() returned / all exits recorded).
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Driver, TaskHandle, TaskLaunch } from "../agent/driver/driver.js";
import { LxcDriver } from "../agent/driver/lxc.js";
import { ProcessDriver } from "../agent/driver/process.js";
import { until } from "../test/harness/wait.js";

export interface Stat {
  median: number;
  p90: number;
}

function statOf(ms: number[]): Stat {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { median: at(0.5), p90: at(0.9) };
}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Waits (bounded, 10 s) until the file is non-empty; returns the time it was seen. Polled every millisecond: this is the figure. */
function firstByte(path: string): Promise<number> {
  // A file not created yet throws: not yet.
  return until(`output in ${path}`, async () => (await stat(path)).size > 0 && nowMs(), { timeoutMs: 10_000, intervalMs: 0 });
}

async function launch(root: string, i: number, command: string[]): Promise<TaskLaunch> {
  const taskDir = join(root, `t${i}`);
  await mkdir(taskDir, { recursive: true });
  return { taskId: `bench/${i}`, attempt: 1, command, taskDir, env: {}, resources: { cpu: 1, memory: 256 * 1024 * 1024, disk: 0 } };
}

async function latency(driver: Driver, root: string, runs: number): Promise<{ start: Stat; running: Stat; lastConfig?: string }> {
  const startMs: number[] = [];
  const runningMs: number[] = [];
  let lastConfig: string | undefined;
  for (let i = 0; i < runs; i++) {
    const l = await launch(root, i, ["echo", "x"]);
    const t0 = nowMs();
    const h = await driver.start(l);
    startMs.push(nowMs() - t0);
    runningMs.push((await firstByte(join(l.taskDir, "stdout"))) - t0);
    await driver.wait(h);
    await driver.destroy(h);
    lastConfig = join(l.taskDir, "lxc.conf");
  }
  return { start: statOf(startMs), running: statOf(runningMs), lastConfig };
}

async function throughput(driver: Driver, root: string, count: number, concurrency: number): Promise<{ startedPerS: number; finishedPerS: number }> {
  const launches = await Promise.all(Array.from({ length: count }, (_, i) => launch(root, 10_000 + i, ["true"])));
  const handles: TaskHandle[] = [];
  const t0 = nowMs();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < launches.length) {
        const l = launches[next++];
        if (l) handles.push(await driver.start(l));
      }
    }),
  );
  const started = nowMs() - t0;
  await Promise.all(handles.map((h) => driver.wait(h)));
  const finished = nowMs() - t0;
  for (const h of handles) await driver.destroy(h);
  return { startedPerS: (count / started) * 1000, finishedPerS: (count / finished) * 1000 };
}

function rawLxcTrue(config: string, lxcPath: string, runs: number): Stat {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = nowMs();
    const r = spawnSync("lxc-execute", ["-n", `bench-raw-${process.pid}`, "-P", lxcPath, "-f", config, "--", "/bin/true"], { stdio: "ignore" });
    ms.push(nowMs() - t0);
    if (r.status !== 0) throw new Error(`lxc-execute /bin/true exited ${r.status}`);
  }
  return statOf(ms);
}

const fmt = (s: Stat): string => `median ${s.median.toFixed(1)} ms, p90 ${s.p90.toFixed(1)} ms`;

export async function benchDriverStart(runs = 30): Promise<string[]> {
  const out: string[] = [];
  const root = await mkdtemp(join(tmpdir(), "torca-bench-"));
  try {
    const p = await latency(new ProcessDriver(), join(root, "p"), runs);
    out.push(`process start():      ${fmt(p.start)} (${runs} runs)`, `process running:      ${fmt(p.running)}`);
    const pt = await throughput(new ProcessDriver(), join(root, "pt"), 500, 16);
    out.push(`process throughput:   ${pt.startedPerS.toFixed(0)} starts/s, ${pt.finishedPerS.toFixed(0)} tasks/s to exit recorded (500 x true)`);
    const lxc = new LxcDriver({ baseDir: join(root, "lxc") });
    const fp = await lxc.fingerprint();
    if (!fp.available) {
      out.push(`lxc: skipped (${fp.reason})`);
      return out;
    }
    const l = await latency(lxc, join(root, "l"), runs);
    out.push(`lxc start():          ${fmt(l.start)} (${runs} runs)`, `lxc running:          ${fmt(l.running)}`);
    if (l.lastConfig) out.push(`lxc-execute /bin/true: ${fmt(rawLxcTrue(l.lastConfig, lxc.lxcPath, runs))} (spawn to exit, same config)`);
    const lt = await throughput(lxc, join(root, "lt"), 150, 16);
    out.push(`lxc throughput:       ${lt.startedPerS.toFixed(0)} starts/s, ${lt.finishedPerS.toFixed(0)} tasks/s to exit recorded (150 x true)`);
    return out;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = Number(process.argv[2] ?? 30);
  for (const line of await benchDriverStart(runs)) console.log(line);
}
