/**
 * Reclamation on a real cell (docs/reclamation.md), process driver with
 * cgroup v1, one agent offering 2 cores. A prod service reserves 1.5 of them
 * and idles until a flag file appears, then burns one core. Batch fill-in
 * (4 × 0.4 core) counts the work units it completes in files.
 *
 * The same batch workload runs for the same time twice: opted out
 * (`reclaimable: false`, placed against requests only) and reclaimable (may
 * use what the idle service reserved). Then the service's load rises: the
 * reclaimed tasks are throttled (their cfs quota lowered), then evicted back
 * to pending (not failed), and the service's own cgroup shows no throttling
 * (its quota of 1.5 cores is above the one core it uses).
 */
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import type { TaskInstance } from "../../src/common/types.js";
import { startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? "cgroups need a root agent" : zookeeperInstalled() ? false : "ZooKeeper is not installed";
const CPU_CGROUPS = "/sys/fs/cgroup/cpu/torca";
const CPUACCT_CGROUPS = "/sys/fs/cgroup/cpuacct/torca";
/** How long each batch workload runs before its work is counted; off and on alternate twice (off, on, off, on), so drift in the host's load falls on both. */
const PHASE_MS = 20_000;

/**
 * The cgroup dirs (under torca/) of a job's running processes: found from the
 * processes, whose environment names their job, because the process driver
 * takes task cgroups from a pool whose names say nothing of the task.
 */
async function cgroupsOf(job: string): Promise<string[]> {
  const found = new Set<string>();
  for (const pid of (await readdir("/proc")).filter((n) => /^\d+$/.test(n))) {
    const environ = await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
    if (!environ.split("\0").includes(`TORCA_JOB=${job}`)) continue;
    const cgroups = await readFile(`/proc/${pid}/cgroup`, "utf8").catch(() => "");
    const cpu = cgroups.split("\n").find((l) => l.split(":")[1]?.split(",").includes("cpu"));
    const path = cpu?.split(":")[2] ?? "";
    if (path.startsWith("/torca/")) found.add(path.slice("/torca/".length));
  }
  return [...found];
}

async function readNumber(path: string): Promise<number | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  return text === undefined ? undefined : Number(text.trim());
}

async function cpuStat(name: string): Promise<Record<string, number>> {
  const text = await readFile(join(CPU_CGROUPS, name, "cpu.stat"), "utf8");
  return Object.fromEntries(text.trim().split("\n").map((l) => [l.split(" ")[0], Number(l.split(" ")[1])]));
}

describe("batch work on reclaimed capacity, given back when prod load rises", { skip, timeout: 600_000 }, () => {
  let tc: TestCell;
  let shared: string;
  let work: string;
  let flag: string;

  before(async () => {
    shared = await mkdtemp(join(tmpdir(), "torca-reclaim-"));
    // Tasks run under uids of their own: they must reach the flag and write their counters.
    await chmod(shared, 0o755);
    work = join(shared, "work");
    await mkdir(work);
    await chmod(work, 0o1777);
    flag = join(shared, "burn");
    tc = await startTestCell({
      managers: 1,
      agents: 1,
      sessionTimeout: "8s",
      managerExtra: { reclamation: { enabled: true, margin: 0.2, window: "6s" } },
      agentExtra: { resources: { cpu: 2 }, reclamation: { margin: 0.2, evictAfter: "4s" } },
    });
  });

  after(async () => {
    await tc?.close();
    await rm(shared, { recursive: true, force: true });
  });

  const burnLoop = "i=0; while [ $i -lt 10000 ]; do i=$((i+1)); done";

  function fillIn(name: string, extra: string): string {
    const command = ["/bin/sh", "-c", `n=0; f=${work}/$TORCA_JOB-$TORCA_INDEX-$TORCA_ATTEMPT; while true; do ${burnLoop}; n=$((n+1)); echo $n > $f; done`];
    return `name: ${name}\ntype: batch\nisolation: process\ninstances: 4\ncommand: ${JSON.stringify(command)}\nresources: { cpu: 0.4, memory: 32MiB }\n${extra}`;
  }

  /** Work units the job's tasks completed so far (every attempt). */
  async function unitsOf(job: string): Promise<number> {
    let sum = 0;
    for (const f of await readdir(work)) if (f.startsWith(`${job}-`)) sum += (await readNumber(join(work, f))) ?? 0;
    return sum;
  }

  /** Runs the fill-in for PHASE_MS: the work it completed, its CPU seconds, the most tasks running at once (and on reclaimed capacity). */
  async function measure(name: string, extra: string): Promise<{ units: number; cpuSeconds: number; running: number; reclaimed: number; load: number }> {
    await tc.submit(fillIn(name, extra));
    const end = Date.now() + PHASE_MS;
    let running = 0;
    let reclaimed = 0;
    while (Date.now() < end) {
      const tasks = (await tc.job(name)).taskList;
      running = Math.max(running, tasks.filter((t) => t.state === "running").length);
      reclaimed = Math.max(reclaimed, tasks.filter((t) => t.state === "running" && t.reclaimed).length);
      await sleep(1000);
    }
    let cpuNs = 0;
    for (const cg of await cgroupsOf(name)) cpuNs += (await readNumber(join(CPUACCT_CGROUPS, cg, "cpuacct.usage"))) ?? 0;
    return { units: await unitsOf(name), cpuSeconds: cpuNs / 1e9, running, reclaimed, load: loadavg()[0] ?? 0 };
  }

  async function stop(job: string): Promise<void> {
    await tc.api.delete(`${await tc.primaryUrl()}/v1/jobs/${job}`);
    await until(`${job} stopped`, async () => (await cgroupsOf(job)).length === 0, { timeoutMs: 30_000, intervalMs: 200 });
  }

  it("places batch work on what idle prod reserved, throttles then evicts it when prod needs it, and prod is never throttled below its quota", async () => {
    const web = ["/bin/sh", "-c", `while true; do if [ -e ${flag} ]; then ${burnLoop}; else sleep 0.2; fi; done`];
    await tc.submit(`name: web\ntype: service\npriority: prod\nisolation: process\ncommand: ${JSON.stringify(web)}\nresources: { cpu: 1.5, memory: 64MiB }\n`);
    await tc.waitJob("web", (j) => j.taskList[0]?.state === "running", 60_000, "prod service running");
    const url = await tc.primaryUrl();

    // Opted out (only the 0.5 core prod did not reserve is used), then reclaimable (may use what the idle service
    // reserved): the same workload for the same time, twice each.
    const off: Awaited<ReturnType<typeof measure>>[] = [];
    const on: Awaited<ReturnType<typeof measure>>[] = [];
    for (const round of ["a", "b"]) {
      off.push(await measure(`fill-off-${round}`, "reclaimable: false\n"));
      await stop(`fill-off-${round}`);
      const webTask = await tc.api.get(`${url}/v1/tasks/${encodeURIComponent("web/0")}`).json<TaskInstance & { estimate?: { reservation: { cpu: number } } }>();
      assert.ok(webTask.estimate && webTask.estimate.reservation.cpu < 0.5, `the idle service's estimate has decayed: ${JSON.stringify(webTask.estimate)}`);
      on.push(await measure(`fill-on-${round}`, ""));
      if (round === "a") await stop(`fill-on-${round}`);
    }
    const sum = (ms: typeof off, f: (m: (typeof off)[number]) => number) => ms.reduce((s, m) => s + f(m), 0);
    const [offUnits, onUnits] = [sum(off, (m) => m.units), sum(on, (m) => m.units)];
    // Reclaimed tasks have the least CPU weight: they only get what nothing else on the machine wants, so the
    // extra work depends on the host's load (given with the figure), and is reported rather than asserted.
    console.log(
      `batch work in 2 × ${PHASE_MS / 1000} s: reclamation off ${offUnits} units, ${sum(off, (m) => m.cpuSeconds).toFixed(1)} cpu-s (at most ${Math.max(...off.map((m) => m.running))} task running); ` +
        `on ${onUnits} units, ${sum(on, (m) => m.cpuSeconds).toFixed(1)} cpu-s (${Math.max(...on.map((m) => m.running))} running, ${Math.max(...on.map((m) => m.reclaimed))} on reclaimed capacity); ` +
        `extra ${onUnits - offUnits} units (${offUnits > 0 ? ((onUnits / offUnits - 1) * 100).toFixed(0) : "∞"} %); host load ${[...off, ...on].map((m) => m.load.toFixed(1)).join(", ")}`,
    );
    for (const m of off) assert.equal(m.running, 1, "opted out: one 0.4-core task fits beside the 1.5-core reservation");
    for (const m of on) {
      assert.equal(m.running, 4, "reclaimable: all four run");
      assert.ok(m.reclaimed >= 3, `reclaimable: three placed on reclaimed capacity (${m.reclaimed})`);
    }

    // Prod load rises.
    const [webCgroup] = await cgroupsOf("web");
    assert.ok(webCgroup, "the service has a cgroup");
    const before = { stat: await cpuStat(webCgroup), cpuNs: (await readNumber(join(CPUACCT_CGROUPS, webCgroup, "cpuacct.usage"))) ?? 0, at: Date.now() };
    await writeFile(flag, "");
    const throttled = await until(
      "a reclaimed task throttled below its 0.4-core quota",
      async () => {
        for (const name of await cgroupsOf("fill-on-b")) {
          const quota = await readNumber(join(CPU_CGROUPS, name, "cpu.cfs_quota_us"));
          if (quota !== undefined && quota > 0 && quota < 40_000) return { name, quota };
        }
        return undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const evicted = await tc.waitJob("fill-on-b", (j) => j.taskList.some((t) => t.events.some((e) => e.type === "evicted")), 60_000, "a reclaimed task evicted");
    const burst = { stat: await cpuStat(webCgroup), cpuNs: (await readNumber(join(CPUACCT_CGROUPS, webCgroup, "cpuacct.usage"))) ?? 0, at: Date.now() };
    const webCores = (burst.cpuNs - before.cpuNs) / ((burst.at - before.at) * 1e6);
    const evictedTasks = evicted.taskList.filter((t) => t.events.some((e) => e.type === "evicted"));
    console.log(`throttled ${throttled.name} to ${throttled.quota / 1000} ms per 100 ms; evicted ${evictedTasks.map((t) => t.id).join(", ")}; the service used ${webCores.toFixed(2)} cores during the burst; its cpu.stat: ${JSON.stringify(burst.stat)}`);
    for (const t of evicted.taskList) {
      assert.notEqual(t.state, "failed", `${t.id} is not failed`);
      assert.equal(t.migrations, 0, `${t.id}: no migration counted`);
    }
    for (const t of evictedTasks) assert.ok(t.events.some((e) => e.type === "evicted" && /back to pending/.test(e.message)));
    assert.equal(burst.stat.nr_throttled, 0, "the service is never throttled: its 1.5-core quota is above the core it uses");
    assert.equal(burst.stat.throttled_time, 0);
  });
});
