/**
 * P7 and the manager at scale: a real ZooKeeper, two real managers (child
 * processes) and the simulated cell (bench/sim) with 10,000 machines in this
 * process. 100 service jobs of 1,000 instances go in through the API; then:
 *
 *  - time until all are accepted (201) and until all 100,000 run (the
 *    manager's end-to-end placements/s: placement, the durable dispatch
 *    record, the dispatch itself, the agent's report, the running record);
 *  - primary and backup RSS (/proc/<pid>/status) holding 100,000 tasks, and
 *    ZooKeeper's own figures (mntr: data size, znodes, watches);
 *  - takeover: SIGKILL of the primary → the backup answers a submit with 201
 *    (several takeovers: the killed manager restarts, loads the state cold as
 *    the new backup, and is killed in turn), and the new primary's RSS.
 *
 * Run directly: `node dist/bench/manager-scale.js [--machines N] [--jobs N]
 * [--instances N] [--takeovers N] [--report-interval MS] [--submit-concurrency N]
 * [--report-concurrency N]`.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import type { Got } from "got";
import { LocalCell } from "../src/cell/local-cell.js";
import { fourLetterWord } from "../src/cell/zookeeper-server.js";
import { createHttpClient } from "../src/common/http.js";
import { daemonNodeArgs, progressOf } from "./cell-common.js";
import { SimCell } from "./sim/sim-cell.js";
import { until } from "../test/harness/wait.js";

export interface ManagerScaleOptions {
  machines: number;
  jobs: number;
  instancesPerJob: number;
  takeovers: number;
  /** Full report interval of every simulated machine (and the managers' reconcile grace). */
  reportIntervalMs: number;
  /** Submissions in flight at once. */
  submitConcurrency: number;
  /**
   * Reports the simulated machines have in flight at once. Real machines each
   * report on their own connection, so a cell of 10,000 can have thousands in
   * flight; the simulator's one process bounds them.
   */
  reportConcurrency: number;
}

export const DEFAULT_MANAGER_SCALE: ManagerScaleOptions = { machines: 10_000, jobs: 100, instancesPerJob: 1000, takeovers: 5, reportIntervalMs: 10_000, submitConcurrency: 4, reportConcurrency: 32 };

const SESSION_TIMEOUT = "2s";
const GiB = 1024 ** 3;

type JobSummary = { id: string; tasks: Record<string, number> };

/** Varied jobs, so constraints, spread limits and both strategies are in play; every one fits. */
export function scaleJob(j: number, instances: number): string {
  const lines = [`name: scale-${j}`, "type: service", `instances: ${instances}`, "command: [/bin/sleep, '86400']", "resources: { cpu: 0.5, memory: 1GiB, disk: 1GiB }"];
  const constraints = ["{ attribute: os, operator: '=', value: linux }"];
  if (j % 3 === 1) constraints.push("{ attribute: zone, operator: in, value: [z1, z2, z3, z5, z6] }");
  if (j % 5 === 2) constraints.push("{ attribute: kernel, operator: regexp, value: '^6\\.' }");
  lines.push(`constraints: [${constraints.join(", ")}]`);
  if (j % 10 === 3) lines.push("placement: { strategy: spread }");
  else if (j % 4 === 0) lines.push("placement: { strategy: binpack, maxPerNode: 4 }");
  if (j % 10 === 7) lines.push("ports: [{ name: http }]");
  return lines.join("\n") + "\n";
}

function rssMiB(pid: number | undefined): { rss: number; peak: number } {
  if (!pid) return { rss: NaN, peak: NaN };
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kb("VmRSS") / 1024), peak: Math.round(kb("VmHWM") / 1024) };
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const cpuUsageSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/** Busy and total CPU time of the whole machine so far (all cores, /proc/stat), in seconds. */
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  // idle and iowait are the machine waiting; everything else is work.
  return { busy: (total - f[3]! - f[4]!) / 100, total: total / 100 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The manager's own view of its memory (/metrics): live JS heap against resident. */
async function heapMiB(api: Got, url: string): Promise<number> {
  const m = await api.get(`${url}/metrics`).text();
  return Math.round(Number(/^nodejs_heap_size_used_bytes (\d+)/m.exec(m)?.[1] ?? NaN) / 1048576);
}

function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

/** ZooKeeper operations that change state: everything the session observer counts but reads. */
const ZK_READS = new Set(["get", "exists", "children", "sync", "getAcl"]);

type HistogramTotals = Map<string, { sum: number; count: number }>;

/** Sum and count of each histogram series the primary's /metrics names (`name{labels}`), for differences over a phase. */
async function histogramTotals(api: Got, url: string): Promise<HistogramTotals> {
  const m = await api.get(`${url}/metrics`).text();
  const totals: HistogramTotals = new Map();
  for (const [, name, part, labels, value] of m.matchAll(/^(torca_[a-z_]+)_(sum|count)(\{[^}]*\})? ([0-9.e+-]+)$/gm)) {
    const key = `${name}${labels ?? ""}`;
    const t = totals.get(key) ?? { sum: 0, count: 0 };
    t[part as "sum" | "count"] = Number(value);
    totals.set(key, t);
  }
  return totals;
}

/** The manager's ZooKeeper writes in `totals` (operation duration histogram counts, ok or not). */
function zookeeperWrites(totals: HistogramTotals): number {
  let n = 0;
  for (const [key, { count }] of totals) {
    const operation = /^torca_zookeeper_operation_duration_seconds\{.*operation="([^"]*)"/.exec(key)?.[1];
    if (operation !== undefined && !ZK_READS.has(operation)) n += count;
  }
  return n;
}

/** Where the primary's time went during a phase: rounds, ZooKeeper writes and dispatch requests (count, mean ms, total s). */
function phaseTimings(before: HistogramTotals, after: HistogramTotals): Record<string, string> {
  const series: [string, string][] = [
    ["placement rounds", "torca_placement_duration_seconds"],
    ["zk set", 'torca_zookeeper_operation_duration_seconds{operation="set",result="ok"}'],
    ["zk create", 'torca_zookeeper_operation_duration_seconds{operation="create",result="ok"}'],
    ["dispatch requests", 'torca_dispatch_duration_seconds{result="ok"}'],
  ];
  const out: Record<string, string> = {};
  for (const [label, key] of series) {
    const a = after.get(key) ?? { sum: 0, count: 0 };
    const b = before.get(key) ?? { sum: 0, count: 0 };
    const count = a.count - b.count;
    const sum = a.sum - b.sum;
    out[`manager-scale ${label} during placement (count, mean ms, total s)`] = `${count} ${count ? round1((1000 * sum) / count) : 0} ${round1(sum)}`;
  }
  return out;
}

async function taskCounts(api: Got, url: string): Promise<{ total: number; running: number }> {
  const { jobs } = await api.get(`${url}/v1/jobs`).json<{ jobs: JobSummary[] }>();
  let total = 0;
  let running = 0;
  for (const j of jobs) {
    for (const [state, n] of Object.entries(j.tasks)) {
      total += n;
      if (state === "running") running += n;
    }
  }
  return { total, running };
}

export async function benchManagerScale(opts: Partial<ManagerScaleOptions> = {}): Promise<Record<string, number | string>> {
  const o = { ...DEFAULT_MANAGER_SCALE, ...opts };
  const tasks = o.jobs * o.instancesPerJob;
  const progress = progressOf("manager-scale");
  const out: Record<string, number | string> = {
    "manager-scale workload": `${o.machines} simulated machines (16 cores, 64 GiB), ${o.jobs} service jobs x ${o.instancesPerJob} instances, report interval ${o.reportIntervalMs} ms, ${o.reportConcurrency} reports in flight, session ${SESSION_TIMEOUT}`,
  };
  const dir = mkdtempSync(join(tmpdir(), "torca-bench-scale-"));
  let sim: SimCell | undefined;
  const cell = new LocalCell({
    dir,
    managers: 2,
    agents: 0,
    sessionTimeout: SESSION_TIMEOUT,
    tickTimeMs: 1000,
    zookeeperHeap: "2g",
    reportInterval: `${o.reportIntervalMs}ms`,
    ...daemonNodeArgs(),
  });
  // An interrupted run still stops every process it started.
  const onSignal = () => void Promise.allSettled([sim?.stop(), cell.stop()]).then(() => process.exit(130));
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  try {
    await cell.start();
    const api = createHttpClient({ token: cell.token, timeoutMs: 120_000, retries: 0, followRedirect: false });
    await cell.waitForPrimary(60_000);
    sim = new SimCell({
      zookeeper: cell.zookeeper!.connectString,
      auth: cell.zookeeperAuth,
      token: cell.token,
      managerToken: cell.managerToken,
      agents: o.machines,
      reportIntervalMs: o.reportIntervalMs,
      reportConcurrency: o.reportConcurrency,
      sessionTimeoutMs: 10_000,
      capacity: { cpu: 16, memory: 64 * GiB, disk: 1000 * GiB },
    });
    let t0 = Date.now();
    progress(`registering ${o.machines} simulated machines`);
    await sim.start();
    out["manager-scale sim registration s"] = round1((Date.now() - t0) / 1000);
    // Polled one request at a time with a long timeout: 10,000 nodes make a large answer.
    await until(`${o.machines} machines ready`, async () => {
      const l = await cell.waitForPrimary(60_000);
      const { nodes } = await api.get(`${l.url}/v1/nodes`).json<{ nodes: { state: string }[] }>();
      return nodes.filter((n) => n.state === "ready").length >= o.machines ? true : undefined;
    }, { timeoutMs: 600_000, intervalMs: 1000 });
    out["manager-scale machines ready at the primary s"] = round1((Date.now() - t0) / 1000);

    // ---- 100,000 tasks in through the API
    progress(`submitting ${o.jobs} jobs of ${o.instancesPerJob}`);
    let primary = await cell.waitForPrimary(60_000);
    const pidOf = (id: string) => cell.daemons.get(id)?.process?.pid;
    const backupId = () => [...cell.daemons.values()].find((d) => d.kind === "manager" && d.id !== primary.id)!.id;
    const cpu0 = cpuSeconds(pidOf(primary.id));
    // Where the machine's CPU goes while placing: every process of the run shares its cores.
    const otherCpu = () => ({ backup: cpuSeconds(pidOf(backupId())), zookeeper: cpuSeconds(cell.zookeeper!.pid), bench: cpuUsageSeconds(process.cpuUsage()), machine: machineCpu() });
    const others0 = otherCpu();
    const timings0 = await histogramTotals(api, primary.url);
    t0 = Date.now();
    let next = 0;
    // Every submission but the first few goes in while earlier jobs' instances are being placed.
    const submitMs: number[] = [];
    let resubmitted = 0;
    /** Submits job `j` until a primary acknowledges it: a 503 (the primary lost its session) is not an answer, so it goes to the next primary. */
    const submit = async (j: number) => {
      for (let resent = false; ; resent = true) {
        const res = await api.post(`${primary.url}/v1/jobs`, { body: scaleJob(j, o.instancesPerJob), headers: { "content-type": "application/yaml" }, throwHttpErrors: false });
        if (res.statusCode === 201 || res.statusCode === 200) return;
        // A resend finding its job: the attempt answered 503 had made it durable after all (the new primary's copy had not seen it yet).
        if (res.statusCode === 409 && resent && res.body.includes("already exists")) return;
        if (res.statusCode !== 503) throw new Error(`submit scale-${j}: HTTP ${res.statusCode} ${res.body}`);
        resubmitted++;
        primary = await cell.waitForPrimary(60_000);
      }
    };
    await Promise.all(
      Array.from({ length: o.submitConcurrency }, async () => {
        while (next < o.jobs) {
          const j = next++;
          const s0 = performance.now();
          await submit(j);
          submitMs.push(performance.now() - s0);
        }
      }),
    );
    out["manager-scale submissions resent after a 503 (primary change)"] = resubmitted;
    const acceptS = (Date.now() - t0) / 1000;
    out["manager-scale submit: all jobs accepted s"] = round1(acceptS);
    progress(`all jobs accepted; waiting for ${tasks} tasks running`);
    await until(`all ${tasks} tasks running`, async () => {
      const c = await taskCounts(api, primary.url);
      return c.running >= tasks ? c : undefined;
    }, { timeoutMs: 3_600_000, intervalMs: 2000 });
    const runningS = (Date.now() - t0) / 1000;
    out["manager-scale submit: all tasks running s"] = round1(runningS);
    out["manager-scale placements/s (submit to running, end to end)"] = Math.round(tasks / runningS);
    out["manager-scale primary cpu s during placement"] = round1(cpuSeconds(pidOf(primary.id)) - cpu0);
    const others1 = otherCpu();
    out["manager-scale backup cpu s during placement"] = round1(others1.backup - others0.backup);
    out["manager-scale zookeeper cpu s during placement"] = round1(others1.zookeeper - others0.zookeeper);
    out["manager-scale simulated machines (bench process) cpu s during placement"] = round1(others1.bench - others0.bench);
    out["manager-scale machine cpu busy % during placement (all cores)"] = Math.round((100 * (others1.machine.busy - others0.machine.busy)) / (others1.machine.total - others0.machine.total));
    out["manager-scale submit p50 during placement (ms)"] = Math.round(percentile(submitMs, 0.5));
    out["manager-scale submit p90 during placement (ms)"] = Math.round(percentile(submitMs, 0.9));
    out["manager-scale submit p99 during placement (ms)"] = Math.round(percentile(submitMs, 0.99));
    const timings1 = await histogramTotals(api, primary.url);
    out["manager-scale zk writes per task placed"] = round1((zookeeperWrites(timings1) - zookeeperWrites(timings0)) / tasks);
    Object.assign(out, phaseTimings(timings0, timings1));
    const backupT0 = Date.now();
    progress("all running; waiting for the backup's copy");
    await until("the backup's copy holding every task", async () => {
      const c = await taskCounts(api, cell.daemons.get(backupId())!.url);
      return c.running >= tasks ? c : undefined;
    }, { timeoutMs: 600_000, intervalMs: 1000 });
    out["manager-scale backup copy caught up after s"] = round1((Date.now() - backupT0) / 1000);
    // Let a full report round pass, so the figures are of a cell at rest, not of the burst.
    await sleep(o.reportIntervalMs + 2000);
    const pr = rssMiB(pidOf(primary.id));
    const br = rssMiB(pidOf(backupId()));
    out["manager-scale primary RSS MiB"] = pr.rss;
    out["manager-scale primary peak RSS MiB"] = pr.peak;
    out["manager-scale backup RSS MiB"] = br.rss;
    out["manager-scale backup peak RSS MiB"] = br.peak;
    out["manager-scale primary JS heap used MiB"] = await heapMiB(api, primary.url);
    out["manager-scale backup JS heap used MiB"] = await heapMiB(api, cell.daemons.get(backupId())!.url);
    const mntr = await fourLetterWord("127.0.0.1", cell.zookeeper!.port, "mntr", 5000);
    const zk = (key: string) => Number(new RegExp(`^zk_${key}\\s+(\\d+)`, "m").exec(mntr)?.[1] ?? NaN);
    out["manager-scale zookeeper data size MiB"] = round1(zk("approximate_data_size") / 1024 / 1024);
    out["manager-scale zookeeper znodes"] = zk("znode_count");
    out["manager-scale zookeeper watches"] = zk("watch_count");
    out["manager-scale zookeeper RSS MiB"] = rssMiB(cell.zookeeper!.pid).rss;

    // ---- takeovers
    const takeoverMs: number[] = [];
    const coldLoadS: number[] = [];
    const newPrimaryRss: number[] = [];
    for (let k = 0; k < o.takeovers; k++) {
      // Asked again each time: the primary may have changed on its own (a lost session).
      const victim = (primary = await cell.waitForPrimary(60_000));
      const heir = cell.daemons.get(backupId())!;
      const killedAt = Date.now();
      progress(`takeover ${k}: SIGKILL of ${victim.id} (epoch ${victim.epoch}); submitting to ${heir.id}`);
      await cell.stopDaemon(victim.id, "SIGKILL");
      const probe = `takeover-${k}`;
      const epoch = await until("the backup accepting a submit", async () => {
        const r = await api.post(`${heir.url}/v1/jobs`, { body: `name: ${probe}\ntype: service\ncommand: [/bin/sleep, '86400']\nresources: { cpu: 0.1, memory: 16MiB }\n`, throwHttpErrors: false });
        return r.statusCode === 201 ? (JSON.parse(r.body) as { epoch: number }).epoch : undefined;
      }, { timeoutMs: 120_000, intervalMs: 20 });
      takeoverMs.push(Date.now() - killedAt);
      if (epoch <= victim.epoch) throw new Error(`takeover ${k}: the 201 came from epoch ${epoch}, not from a primary newer than the killed one (${victim.epoch})`);
      primary = await cell.waitForPrimary(60_000);
      // The killed manager comes back as the backup and loads everything cold.
      const loadT0 = Date.now();
      progress(`takeover ${k}: ${primary.id} primary at epoch ${epoch}; restarting ${victim.id}`);
      cell.startDaemon(victim.id);
      await until("the restarted backup's copy", async () => {
        const c = await taskCounts(api, cell.daemons.get(victim.id)!.url);
        return c.total >= tasks + k + 1 ? c : undefined;
      }, { timeoutMs: 600_000, intervalMs: 1000 });
      coldLoadS.push((Date.now() - loadT0) / 1000);
      // The new primary has reconciled every machine's report by now.
      await sleep(o.reportIntervalMs + 2000);
      newPrimaryRss.push(rssMiB(pidOf(primary.id)).rss);
    }
    out["manager-scale takeover runs"] = takeoverMs.length;
    out["manager-scale takeover ms (SIGKILL to 201) each"] = takeoverMs.join(" ");
    out["manager-scale takeover ms median"] = median(takeoverMs);
    out["manager-scale backup cold load s each"] = coldLoadS.map(round1).join(" ");
    out["manager-scale new primary RSS MiB each"] = newPrimaryRss.join(" ");
    const after = await taskCounts(api, primary.url);
    out["manager-scale tasks running after the takeovers"] = after.running;
    // A primary whose event loop stalls past its session loses it: each one is a takeover nobody asked for.
    out["manager-scale sessions lost by a primary"] = ["manager-1", "manager-2"]
      .map((id) => readFileSync(join(dir, "logs", `${id}.log`), "utf8").split("deposed: session lost").length - 1)
      .reduce((a, b) => a + b, 0);
    const s = sim.stats();
    out["manager-scale sim dispatches received"] = s.dispatches;
    out["manager-scale sim duplicate dispatches"] = s.duplicateDispatches;
    out["manager-scale sim reports sent"] = s.reportsSent;
    out["manager-scale sim reports failed"] = s.reportsFailed;
    return out;
  } finally {
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    await sim?.stop().catch(() => undefined);
    await cell.stop().catch(() => undefined);
    if (!process.env.TORCA_KEEP_BENCH_DIRS) rmSync(dir, { recursive: true, force: true });
  }
}

function argvOptions(argv: string[]): Partial<ManagerScaleOptions> {
  const flags: Record<string, keyof ManagerScaleOptions> = {
    "--machines": "machines",
    "--jobs": "jobs",
    "--instances": "instancesPerJob",
    "--takeovers": "takeovers",
    "--report-interval": "reportIntervalMs",
    "--submit-concurrency": "submitConcurrency",
    "--report-concurrency": "reportConcurrency",
  };
  const o: Partial<ManagerScaleOptions> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = flags[argv[i]!];
    const v = Number(argv[i + 1]);
    if (!key || !Number.isInteger(v) || v < 0) throw new Error(`usage: manager-scale [${Object.keys(flags).join(" N] [")} N]`);
    o[key] = v;
  }
  return o;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await benchManagerScale(argvOptions(process.argv.slice(2)));
  for (const [name, value] of Object.entries(results)) console.log(`${name}: ${value}`);
}
