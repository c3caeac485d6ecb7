/**
 * Scheduler benchmark: 100,000 tasks (1,000 jobs of 100 instances, each job
 * one `placeTasks` call, as the manager would submit them) onto 1,000 and
 * 10,000 simulated machines, with constraints, spread limits, static ports,
 * cached packages, mixed priorities and scoring on. Placements accumulate in
 * the snapshot between calls, so later calls see a fuller cluster.
 *
 * Run directly: `node dist/bench/scheduler.js` prints `name: value` lines.
 */
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { Constraint, JobSpec, NodeInfo } from "../src/common/types.js";
import { placeTasks, type Allocation, type TaskToPlace } from "../src/manager/scheduler/index.js";
import { GiB, makeNode, makeSpec, MiB, nodeIds } from "../test/unit/scheduler-harness.js";

const JOBS = 1_000;
const INSTANCES_PER_JOB = 100;
const PACKAGES = 50;

/** Deterministic, so every run measures the same workload. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/** Digests as real ones look: they differ from the first hex digit on. */
function digestOf(i: number): string {
  return `sha256:${createHash("sha256").update(`package-${i}`).digest("hex")}`;
}

function makeCluster(machines: number, random: () => number): NodeInfo[] {
  return nodeIds(machines).map((id, i) => {
    const cached = Array.from({ length: 5 }, () => digestOf(Math.floor(random() * PACKAGES)));
    return makeNode(id, {
      cpu: 64,
      memory: 256 * GiB,
      disk: 2048 * GiB,
      // A few machines are not taking work, as in any real cell.
      state: i % 200 === 7 ? "draining" : i % 500 === 13 ? "lost" : "ready",
      lxc: i % 10 !== 0,
      attributes: { os: i % 20 === 0 ? "windows" : "linux", zone: `z${i % 8}`, kernel: i % 3 === 0 ? "5.15.0" : "6.8.0", rack: `r${i % 97}` },
      cachedPackages: cached,
    });
  });
}

function makeJob(j: number, random: () => number): { spec: JobSpec; digest: string | undefined } {
  const constraints: Constraint[] = [{ attribute: "os", operator: "=", value: "linux" }];
  if (random() < 0.3) constraints.push({ attribute: "zone", operator: "in", value: ["z1", "z2", "z3", "z5"] });
  if (random() < 0.2) constraints.push({ attribute: "kernel", operator: "regexp", value: "^6\\." });
  if (random() < 0.1) constraints.push({ attribute: "rack", operator: "!=", value: "r13" });
  const priorities = [50, 100, 100, 200];
  const spec = makeSpec(`job-${j}`, {
    instances: INSTANCES_PER_JOB,
    priority: priorities[Math.floor(random() * priorities.length)] ?? 100,
    cpu: [0.1, 0.25, 0.5, 1][Math.floor(random() * 4)] ?? 0.5,
    memory: ([128, 256, 512, 1024, 2048][Math.floor(random() * 5)] ?? 512) * MiB,
    disk: GiB,
    constraints,
    isolation: random() < 0.5 ? "lxc" : undefined,
    staticPorts: random() < 0.05 ? [10_000 + j] : [],
    placement: { strategy: random() < 0.1 ? "spread" : "binpack", ...(random() < 0.2 ? { maxPerNode: 2 } : {}) },
  });
  return { spec, digest: random() < 0.5 ? digestOf(Math.floor(random() * PACKAGES)) : undefined };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function benchOneSize(machines: number): Promise<Record<string, number>> {
  const random = lcg(machines);
  const nodes = makeCluster(machines, random);
  const allocations: Allocation[] = [];
  const callMs: number[] = [];
  const perPlacementUs: number[] = [];
  // CPU time beside wall time: on a shared machine the wall figures include time the process was not running.
  const perPlacementCpuUs: number[] = [];
  let totalCpuUs = 0;
  let placed = 0;
  let unplaced = 0;
  let preempted = 0;
  let totalMs = 0;

  for (let j = 0; j < JOBS; j++) {
    const { spec, digest } = makeJob(j, random);
    const tasks: TaskToPlace[] = [];
    for (let i = 0; i < INSTANCES_PER_JOB; i++) {
      const task: TaskToPlace = { taskId: `job-${j}/${i}`, jobId: `job-${j}`, spec };
      if (digest !== undefined) task.packageDigest = digest;
      tasks.push(task);
    }
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    const result = placeTasks(tasks, { nodes, allocations }, { seed: j });
    const cpu = process.cpuUsage(cpuStarted);
    const elapsed = performance.now() - started;
    totalCpuUs += cpu.user + cpu.system;
    perPlacementCpuUs.push((cpu.user + cpu.system) / tasks.length);
    totalMs += elapsed;
    callMs.push(elapsed);
    perPlacementUs.push((elapsed * 1000) / tasks.length);

    // Apply the plan as the manager would: victims leave, placements join.
    if (result.preemptions.length > 0) {
      const gone = new Set(result.preemptions.map((p) => p.victimTaskId));
      const kept = allocations.filter((a) => !gone.has(a.taskId));
      allocations.length = 0;
      allocations.push(...kept);
    }
    for (const p of result.placements) {
      allocations.push({ taskId: p.taskId, jobId: spec.name, nodeId: p.nodeId, resources: spec.resources, priority: spec.priority, staticPorts: spec.ports.flatMap((port) => (port.static === undefined ? [] : [port.static])) });
    }
    placed += result.placements.length;
    unplaced += result.unplaced.length;
    preempted += result.preemptions.length;
    // Yield now and then so a caller's event loop is not starved during the run.
    if (j % 100 === 99) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  callMs.sort((a, b) => a - b);
  perPlacementUs.sort((a, b) => a - b);
  perPlacementCpuUs.sort((a, b) => a - b);
  return {
    placementsPerSec: Math.round((placed + unplaced) / (totalMs / 1000)),
    p50PerPlacementUs: round(percentile(perPlacementUs, 50)),
    p99PerPlacementUs: round(percentile(perPlacementUs, 99)),
    p99CallMs: round(percentile(callMs, 99), 2),
    placementsPerCpuSec: Math.round((placed + unplaced) / (totalCpuUs / 1e6)),
    p99PerPlacementCpuUs: round(percentile(perPlacementCpuUs, 99)),
    placed,
    unplaced,
    preempted,
  };
}

export async function benchScheduler(): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {
    "scheduler.workload": `${JOBS} jobs x ${INSTANCES_PER_JOB} instances, one placeTasks call per job`,
  };
  for (const machines of [1_000, 10_000]) {
    const r = await benchOneSize(machines);
    for (const [key, value] of Object.entries(r)) out[`scheduler.${machines}_machines.${key}`] = value;
  }
  return out;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await benchScheduler();
  for (const [name, value] of Object.entries(results)) console.log(`${name}: ${value}`);
}
