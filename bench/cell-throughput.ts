import { spawn } from "node:child_process";
import { parseExposition, total } from "../test/harness/metrics.js";
import { setTimeout as sleep } from "node:timers/promises";
import { TERMINAL_TASK_STATES } from "../src/common/types.js";
import { EventWatcher, lxcUsable, nowMs, processesCreated, round, startBenchCell, type BenchCell } from "./cell-common.js";

/**
 * P3: one batch job of 1,000 instances of a trivial task (`true`) on a local
 * cell → tasks completed per second, from the POST until the primary has
 * recorded the last completion. Beside it, the machine's own limit measured in
 * the same run: how fast this machine spawns and reaps `true` from Node (16 and
 * 8 at a time), and the ratio of the two; and, when the Slurm peer ran right
 * before (`npm run bench -- peers`), each rate against Slurm's.
 */

const INSTANCES = 1000;

/** Spawns and reaps `count` `/bin/true` processes, `concurrency` at a time; returns processes per second. */
export async function machineSpawnRate(count: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = nowMs();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        await new Promise<void>((resolve, reject) => {
          const child = spawn("/bin/true", [], { stdio: "ignore" });
          child.once("error", reject);
          child.once("exit", () => resolve());
        });
      }
    }),
  );
  return count / ((nowMs() - t0) / 1000);
}

/** ZooKeeper writes (create, set, delete) the manager at `url` has made so far, from its metrics. */
async function zookeeperWrites(c: BenchCell, url: string): Promise<number> {
  const { samples } = parseExposition(await c.api.get(`${url}/metrics`).text());
  return ["create", "set", "delete"].reduce((n, operation) => n + total(samples, "torca_zookeeper_operation_duration_seconds_count", { operation, result: "ok" }), 0);
}

function jobYaml(name: string, isolation: "process" | "lxc", instances: number): string {
  return `name: ${name}\ntype: batch\nisolation: ${isolation}\ninstances: ${instances}\ncommand: ["/bin/true"]\nresources: { cpu: 1m, memory: 8MiB, disk: 1MiB }\nrestart: { attempts: 0 }\n`;
}

async function runBatch(c: BenchCell, isolation: "process" | "lxc", instances: number): Promise<{ perS: number; seconds: number; failed: number; forksPerTask: number; zkWritesPerTask: number }> {
  const url = await c.primaryUrl();
  const writesBefore = await zookeeperWrites(c, url);
  const events = new EventWatcher(c.api, url);
  await events.open();
  try {
    const id = `p3-${isolation}`;
    const done = new Set<string>();
    let failed = 0;
    const all = events.until(
      (t) => {
        if (t.jobId !== id) return false;
        if (t.state === "completed" || t.state === "failed") {
          if (!done.has(t.id) && t.state === "failed") failed++;
          done.add(t.id);
        }
        return done.size >= instances;
      },
      300_000,
      `${id}: ${instances} tasks finished`,
    );
    const forks0 = processesCreated();
    const t0 = nowMs();
    await c.api.post(`${url}/v1/jobs`, { body: jobYaml(id, isolation, instances), headers: { "content-type": "application/yaml" } });
    const ac = new AbortController();
    const polled = allFinishedByPolling(c, id, instances, ac.signal);
    // The loser of the race settles later (aborted, or timed out): not an unhandled rejection.
    for (const p of [all, polled]) p.catch(() => undefined);
    const t1 = await Promise.race([all, polled]).finally(() => ac.abort());
    const seconds = (t1 - t0) / 1000;
    const forksPerTask = (processesCreated() - forks0) / instances;
    return { perS: instances / seconds, seconds, failed, forksPerTask, zkWritesPerTask: ((await zookeeperWrites(c, url)) - writesBefore) / instances };
  } finally {
    events.close();
  }
}

/**
 * The same end, seen by asking whichever manager is primary once a second: the
 * event stream follows one manager, and a takeover during the run (under heavy
 * load a ZooKeeper session can expire) leaves it silent.
 */
async function allFinishedByPolling(c: BenchCell, id: string, instances: number, signal: AbortSignal): Promise<number> {
  for (;;) {
    await sleep(1000, undefined, { signal });
    const job = await c.job(id).catch(() => undefined);
    const finished = job?.taskList.filter((t) => TERMINAL_TASK_STATES.has(t.state)).length ?? 0;
    if (finished >= instances) return nowMs();
  }
}

/** Rates of peers measured in the same invocation (bench/peers/), tasks/s. */
export interface PeerRates {
  slurm?: number;
}

export const SPAWN_LIMIT_IN_FLIGHT = 8;

export async function benchBatchThroughput(instances = INSTANCES, peers: PeerRates = {}): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  const c = await startBenchCell({ agentDriver: "auto" });
  try {
    const isolations: ("process" | "lxc")[] = lxcUsable() ? ["process", "lxc"] : ["process"];
    // The machine's limit first, while the cell is idle: the same count, 16 at a time.
    const limit = await machineSpawnRate(instances, 16);
    out["P3 machine spawn+reap /bin/true (processes/s)"] = round(limit);
    const limit8 = await machineSpawnRate(instances, SPAWN_LIMIT_IN_FLIGHT);
    out[`spawn-and-reap limit at ${SPAWN_LIMIT_IN_FLIGHT} in flight (processes/s)`] = round(limit8);
    for (const iso of isolations) {
      // One isolation failing (e.g. a takeover under load that loses track of the batch) does not hide the other's figures.
      const r = await runBatch(c, iso, instances).catch((e: unknown) => {
        out[`P3 ${iso}`] = `failed: ${(e as Error).message}`;
        process.exitCode = 1;
        return undefined;
      });
      if (!r) continue;
      out[`P3 ${iso} ${instances} tasks completed (tasks/s)`] = round(r.perS);
      out[`P3 ${iso} wall time (s)`] = round(r.seconds, 2);
      out[`P3 ${iso} ratio to machine limit`] = round(r.perS / limit, 2);
      out[`P3 ${iso} primary ZooKeeper writes per task`] = round(r.zkWritesPerTask, 3);
      out[`P3 ${iso} share of the spawn-and-reap limit at ${SPAWN_LIMIT_IN_FLIGHT} in flight (%)`] = round((100 * r.perS) / limit8);
      if (peers.slurm) out[`P3 ${iso} / slurm (x)`] = round(r.perS / peers.slurm, 2);
      // Every process a task costs is a spawn: the spawn-and-reap limit over this count bounds the rate.
      out[`P3 ${iso} processes created per task (machine-wide)`] = round(r.forksPerTask, 1);
      out[`P3 ${iso} spawn-and-reap limit / processes per task (tasks/s)`] = round(limit8 / r.forksPerTask);
      if (r.failed) out[`P3 ${iso} failed tasks`] = r.failed;
    }
    if (!lxcUsable()) out["P3 lxc"] = "skipped (needs root and lxc)";
  } finally {
    await c.close();
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchBatchThroughput(Number(process.argv[2] ?? INSTANCES)));
}
