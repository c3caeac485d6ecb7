import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packDirectory } from "../src/storage/pack.js";
import { EventWatcher, lxcUsable, nowMs, quantile, round, startBenchCell, type BenchCell } from "./cell-common.js";

/**
 * P2: submit → running on a local cell, with the task's package already in the
 * agent's cache. One sample is: POST /v1/jobs of a one-instance batch job, until
 * the primary publishes that task as `running` (recorded in ZooKeeper after
 * the agent reported it started). Samples run one after another, so each
 * measures the path, not a queue.
 */

const SAMPLES = 200;

async function pushPackage(c: BenchCell): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "torca-bench-pkg-"));
  try {
    await mkdir(join(dir, "bin"));
    // Runs long enough to be seen running, short enough not to pile up.
    await writeFile(join(dir, "bin", "run.sh"), "#!/bin/sh\nexec sleep 0.3\n");
    await chmod(join(dir, "bin", "run.sh"), 0o755);
    await c.api.put(`${await c.primaryUrl()}/v1/packages/p2/1.0`, { body: packDirectory(dir) as unknown as Buffer, headers: { "content-type": "application/gzip" } }).json();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function jobYaml(name: string, isolation: "process" | "lxc"): string {
  return `name: ${name}\ntype: batch\nisolation: ${isolation}\npackage: p2@1.0\ncommand: ["bin/run.sh"]\nresources: { cpu: 10m, memory: 16MiB }\nrestart: { attempts: 0 }\n`;
}

async function samples(c: BenchCell, isolation: "process" | "lxc", n: number): Promise<number[]> {
  const url = await c.primaryUrl();
  const events = new EventWatcher(c.api, url);
  await events.open();
  try {
    // Warm-up (not counted): the agent pulls and caches the package here.
    for (let i = 0; i < 3; i++) {
      const id = `p2-${isolation}-warm-${i}`;
      const running = events.until((t) => t.jobId === id && t.state === "running", 60_000, `${id} running`);
      await c.submit(jobYaml(id, isolation));
      await running;
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = `p2-${isolation}-${i}`;
      const running = events.until((t) => t.jobId === id && t.state === "running", 30_000, `${id} running`);
      const t0 = nowMs();
      await c.api.post(`${url}/v1/jobs`, { body: jobYaml(id, isolation), headers: { "content-type": "application/yaml" } });
      out.push((await running) - t0);
    }
    return out;
  } finally {
    events.close();
  }
}

export async function benchSubmitToRunning(n = SAMPLES): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  const c = await startBenchCell({ agentDriver: "auto" });
  try {
    await pushPackage(c);
    const isolations: ("process" | "lxc")[] = lxcUsable() ? ["process", "lxc"] : ["process"];
    for (const iso of isolations) {
      const ms = await samples(c, iso, n);
      out[`P2 ${iso} submit→running p50 (ms)`] = round(quantile(ms, 0.5));
      out[`P2 ${iso} submit→running p99 (ms)`] = round(quantile(ms, 0.99));
      out[`P2 ${iso} submit→running max (ms)`] = round(Math.max(...ms));
      out[`P2 ${iso} samples`] = ms.length;
    }
    if (!lxcUsable()) out["P2 lxc"] = "skipped (needs root and lxc)";
  } finally {
    await c.close();
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchSubmitToRunning(Number(process.argv[2] ?? SAMPLES)));
}
