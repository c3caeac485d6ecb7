/**
 * Fragmentation benchmark: one stated workload placed on one fixed set of
 * machines with each placement strategy (binpack, spread, fragmentation), by
 * the real scheduler, and what each leaves stranded.
 *
 * Machines (40, heterogeneous like a real cell):
 *   20 standard   32 cores, 128 GiB
 *   12 high-mem   16 cores, 256 GiB
 *    8 gpu        48 cores, 192 GiB, 4 × nvidia/gpu
 * Workloads (seeds 1-10, 520 tasks each, asking about 1.25× the cell's cores
 * and 1.1× its memory, arriving in batches of 25, each batch one
 * `placeTasks` call with the earlier placements bound):
 *   80 % small   0.5, 1 or 2 cores
 *   12 % large   8 or 16 cores
 *    8 % gpu     4 or 8 cores and 1 or 2 GPUs
 *   memory per core drawn from 1, 2, 4, 8, 16 GiB (cpu:memory 1:1 to 1:16;
 *   gpu tasks 4 or 8 GiB per core).
 * Stranded capacity: free cpu and memory on nodes that cannot fit the
 * workload's typical task (its median cpu and median memory: 1 core, 8 GiB),
 * measured once every batch has been offered. Figures are means over the ten
 * workloads.
 *
 * Run directly: `node dist/bench/fragmentation.js` prints `name: value` lines.
 */
import { pathToFileURL } from "node:url";
import type { DeviceRequest, JobSpec, NodeInfo, PlacementStrategy } from "../src/common/types.js";
import { placeTasks, type Allocation, type TaskToPlace } from "../src/manager/scheduler/index.js";
import { Prng } from "../test/harness/prng.js";
import { GiB, makeNode, makeSpec } from "../test/unit/scheduler-harness.js";

/** Ten workloads of the same distribution: one draw can favour any strategy by luck. */
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
const TASKS = 520;
const BATCH = 25;
const GPU = "nvidia/gpu";

interface Shape {
  kind: "small" | "large" | "gpu";
  cpu: number;
  memory: number;
  gpus: number;
}

function machines(): NodeInfo[] {
  const nodes: NodeInfo[] = [];
  for (let i = 0; i < 20; i++) nodes.push(makeNode(`std-${String(i).padStart(2, "0")}`, { cpu: 32, memory: 128 * GiB }));
  for (let i = 0; i < 12; i++) nodes.push(makeNode(`mem-${String(i).padStart(2, "0")}`, { cpu: 16, memory: 256 * GiB }));
  for (let i = 0; i < 8; i++) {
    const id = `gpu-${String(i).padStart(2, "0")}`;
    const instances = Array.from({ length: 4 }, (_, g) => ({ id: `${id}-gpu${g}`, attributes: { model: "A100" } }));
    nodes.push({ ...makeNode(id, { cpu: 48, memory: 192 * GiB }), devices: [{ name: GPU, shareable: false, instances }] });
  }
  return nodes;
}

function pick<T>(random: Prng, from: readonly T[]): T {
  return from[random.int(from.length)] as T;
}

export function workload(seed: number): Shape[] {
  const random = new Prng(seed);
  return Array.from({ length: TASKS }, (): Shape => {
    const roll = random.next();
    if (roll < 0.8) {
      const cpu = pick(random, [0.5, 1, 2]);
      return { kind: "small", cpu, memory: cpu * pick(random, [1, 2, 4, 8, 16]) * GiB, gpus: 0 };
    }
    if (roll < 0.92) {
      const cpu = pick(random, [8, 16]);
      return { kind: "large", cpu, memory: cpu * pick(random, [1, 2, 4, 8]) * GiB, gpus: 0 };
    }
    const cpu = pick(random, [4, 8]);
    return { kind: "gpu", cpu, memory: cpu * pick(random, [4, 8]) * GiB, gpus: pick(random, [1, 2]) };
  });
}

function specOf(shape: Shape, index: number, strategy: PlacementStrategy): JobSpec {
  const spec = makeSpec(`t${index}`, { cpu: shape.cpu, memory: shape.memory, disk: 0, placement: { strategy } });
  const devices: DeviceRequest[] = shape.gpus > 0 ? [{ name: GPU, count: shape.gpus, constraints: [] }] : [];
  return devices.length > 0 ? { ...spec, resources: { ...spec.resources, devices } } : spec;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

export interface StrategyResult {
  placed: number;
  placedByKind: Record<Shape["kind"], number>;
  strandedCpu: number;
  strandedMemory: number;
  freeCpu: number;
  freeMemory: number;
  idleGpus: number;
}

export function placeAll(strategy: PlacementStrategy, shapes: readonly Shape[]): StrategyResult {
  const nodes = machines();
  const allocations: Allocation[] = [];
  const placedByKind = { small: 0, large: 0, gpu: 0 };
  for (let start = 0; start < shapes.length; start += BATCH) {
    const batch: TaskToPlace[] = shapes.slice(start, start + BATCH).map((shape, i) => {
      const spec = specOf(shape, start + i, strategy);
      return { taskId: `${spec.name}/0`, jobId: spec.name, spec };
    });
    // Every node is a candidate: the comparison is of the strategies, not of sampling.
    const result = placeTasks(batch, { nodes, allocations }, { sampleSize: nodes.length, seed: start });
    const byId = new Map(batch.map((t) => [t.taskId, t]));
    for (const p of result.placements) {
      const task = byId.get(p.taskId) as TaskToPlace;
      allocations.push({ taskId: p.taskId, jobId: task.jobId, nodeId: p.nodeId, resources: task.spec.resources, priority: task.spec.priority, staticPorts: [], ...(p.devices ? { devices: p.devices } : {}) });
      placedByKind[(shapes[Number(task.jobId.slice(1))] as Shape).kind]++;
    }
  }
  const typicalCpu = median(shapes.map((s) => s.cpu));
  const typicalMemory = median(shapes.map((s) => s.memory));
  const used = new Map<string, { cpu: number; memory: number; gpus: number }>();
  for (const a of allocations) {
    const u = used.get(a.nodeId) ?? { cpu: 0, memory: 0, gpus: 0 };
    u.cpu += a.resources.cpu;
    u.memory += a.resources.memory;
    u.gpus += a.devices?.reduce((n, d) => n + d.ids.length, 0) ?? 0;
    used.set(a.nodeId, u);
  }
  const r: StrategyResult = { placed: allocations.length, placedByKind, strandedCpu: 0, strandedMemory: 0, freeCpu: 0, freeMemory: 0, idleGpus: 0 };
  for (const node of nodes) {
    const u = used.get(node.id) ?? { cpu: 0, memory: 0, gpus: 0 };
    const cpu = node.allocatable.cpu - u.cpu;
    const memory = node.allocatable.memory - u.memory;
    r.freeCpu += cpu;
    r.freeMemory += memory;
    r.idleGpus += (node.devices?.[0]?.instances.length ?? 0) - u.gpus;
    if (cpu < typicalCpu - 1e-9 || memory < typicalMemory - 1e-9) {
      r.strandedCpu += cpu;
      r.strandedMemory += memory;
    }
  }
  return r;
}

export async function benchFragmentation(): Promise<Record<string, number | string>> {
  const first = workload(SEEDS[0]);
  const total = machines().reduce((t, n) => ({ cpu: t.cpu + n.allocatable.cpu, memory: t.memory + n.allocatable.memory }), { cpu: 0, memory: 0 });
  const out: Record<string, number | string> = {
    machines: 40,
    "cell cpu (cores)": total.cpu,
    "cell memory (GiB)": total.memory / GiB,
    "tasks per workload": first.length,
    workloads: `${SEEDS.length} (seeds ${SEEDS[0]}-${SEEDS[SEEDS.length - 1]}); figures below are means over them`,
    "typical task": `${median(first.map((s) => s.cpu))} cores, ${median(first.map((s) => s.memory)) / GiB} GiB`,
  };
  const results = new Map<PlacementStrategy, StrategyResult[]>();
  for (const seed of SEEDS) {
    const shapes = workload(seed);
    for (const strategy of ["binpack", "spread", "fragmentation"] as const) results.set(strategy, [...(results.get(strategy) ?? []), placeAll(strategy, shapes)]);
  }
  const mean = (rs: StrategyResult[], f: (r: StrategyResult) => number): number => round(rs.reduce((n, r) => n + f(r), 0) / rs.length);
  for (const [strategy, rs] of results) {
    out[`${strategy} tasks placed`] = mean(rs, (r) => r.placed);
    out[`${strategy} gpu tasks placed`] = mean(rs, (r) => r.placedByKind.gpu);
    out[`${strategy} large tasks placed`] = mean(rs, (r) => r.placedByKind.large);
    out[`${strategy} stranded cpu (cores)`] = mean(rs, (r) => r.strandedCpu);
    out[`${strategy} stranded memory (GiB)`] = mean(rs, (r) => r.strandedMemory / GiB);
    out[`${strategy} idle gpus`] = mean(rs, (r) => r.idleGpus);
  }
  const binpack = results.get("binpack") as StrategyResult[];
  const fragmentation = results.get("fragmentation") as StrategyResult[];
  out["workloads where fragmentation strands less cpu and memory than binpack"] = fragmentation.filter((r, i) => r.strandedCpu < (binpack[i] as StrategyResult).strandedCpu && r.strandedMemory < (binpack[i] as StrategyResult).strandedMemory).length;
  return out;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  for (const [k, v] of Object.entries(await benchFragmentation())) process.stdout.write(`${k}: ${v}\n`);
}
