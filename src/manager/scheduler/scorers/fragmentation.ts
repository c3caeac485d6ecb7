/**
 * fragmentation: FGD-like scoring (Weng et al., "Beware of Fragmentation",
 * USENIX ATC'23), generalized from GPUs to every dimension a task asks for.
 *
 * The workload M is the distribution of task shapes (cpu, memory, devices by
 * name) over the tasks of this call and every task bound to a node: what is
 * waiting and what the cell typically runs (the MAX_SHAPES most common). For
 * a node with free vector f and a shape m, the capacity stranded for m is
 * what tasks of that shape cannot use there:
 *   k = min_d f_d / m_d, the copies of m the free capacity holds, counted
 *       fluidly (not rounded down),
 *   stranded(f, m) = Σ_d (f_d − k·m_d) / unit_d
 * (a dimension m does not ask for is entirely stranded for it). The node's
 * expected fragmentation is F(f) = Σ_m p_m · stranded(f, m), and a placement
 * of task t is scored by how much it grows: Δ = F(f − t) − F(f).
 *
 * FGD counts whole copies (k rounded down, all of f stranded when m does not
 * fit). On the fragmentation bench (bench/fragmentation.ts) the fluid count
 * strands far less: rounding makes many placements on roomy nodes tie at "no
 * change", and a tie goes to the smallest node id rather than to the node
 * whose free shape suits the workload.
 *
 * Δ ≥ −size(t), equal exactly when every shape fits as many copies as before
 * (t took only capacity no typical task could use). With y = Δ/size(t) + 1 ≥ 0
 * the score is (1 − y)/(1 + y) in (−1, 1]: 1 for a placement that eats only
 * stranded capacity, 0 for one that uses a task's worth of usable capacity,
 * towards −1 for one that strands far more than it uses.
 *
 * unit_d is the mean allocatable of d over the ready nodes offering it, so one
 * machine's cpu weighs as much as one machine's memory or devices.
 */
import type { JobResources } from "../../../common/types.js";
import type { ChainContext, Scorer } from "../chain.js";
import type { ClusterState } from "../cluster-state.js";
import type { TaskClass } from "../task-class.js";

export const SCORER_FRAGMENTATION = "fragmentation";

/** Shapes kept in the workload: the most common ones carry nearly all the weight. */
const MAX_SHAPES = 32;

interface Workload {
  /** Dimension names: cpu, memory, then device names. */
  readonly devices: readonly string[];
  /** Per shape, its demand in each dimension (cpu, memory, devices...), row-major. */
  readonly demand: Float64Array;
  readonly weight: Float64Array;
  readonly shapes: number;
  /** Per dimension, the unit its amounts are divided by. */
  readonly unit: Float64Array;
}

const workloads = new WeakMap<ClusterState, Workload>();

function deviceCount(resources: JobResources, name: string): number {
  let n = 0;
  for (const d of resources.devices ?? []) if (d.name === name) n += d.count;
  return n;
}

function buildWorkload(ctx: ChainContext): Workload {
  const { state } = ctx;
  const shapes = new Map<string, { resources: JobResources; weight: number }>();
  const add = (resources: JobResources): void => {
    const key = `${resources.cpu}|${resources.memory}|${(resources.devices ?? []).map((d) => `${d.name}*${d.count}`).join(",")}`;
    const shape = shapes.get(key);
    if (shape === undefined) shapes.set(key, { resources, weight: 1 });
    else shape.weight++;
  };
  for (const task of ctx.pending) add(task.spec.resources);
  for (const alloc of state.boundAllocations) add(alloc.resources);
  const top = [...shapes.values()].sort((a, b) => b.weight - a.weight).slice(0, MAX_SHAPES);
  const devices = [...new Set(top.flatMap((s) => (s.resources.devices ?? []).map((d) => d.name)))].sort();
  const dims = 2 + devices.length;
  const demand = new Float64Array(top.length * dims);
  const weight = new Float64Array(top.length);
  const total = top.reduce((sum, s) => sum + s.weight, 0);
  top.forEach((s, i) => {
    demand[i * dims] = s.resources.cpu;
    demand[i * dims + 1] = s.resources.memory;
    devices.forEach((name, j) => (demand[i * dims + 2 + j] = deviceCount(s.resources, name)));
    weight[i] = s.weight / total;
  });
  return { devices, demand, weight, shapes: top.length, unit: unitsOf(state, devices) };
}

function unitsOf(state: ClusterState, devices: readonly string[]): Float64Array {
  const unit = new Float64Array(2 + devices.length);
  const sums = new Float64Array(unit.length);
  const counts = new Float64Array(unit.length);
  for (let i = 0; i < state.size; i++) {
    if (state.ready[i] !== 1) continue;
    sums[0] += state.allocatableCpu[i] as number;
    sums[1] += state.allocatableMemory[i] as number;
    counts[0]++;
    counts[1]++;
    devices.forEach((name, j) => {
      const total = state.devices?.totalCount(i, name) ?? 0;
      if (total > 0) {
        sums[2 + j] += total;
        counts[2 + j]++;
      }
    });
  }
  for (let d = 0; d < unit.length; d++) unit[d] = counts[d] ? (sums[d] as number) / (counts[d] as number) || 1 : 1;
  return unit;
}

/** F(f): the expected capacity stranded on a node with free vector `free`, in units. */
function expectedStranded(w: Workload, free: Float64Array): number {
  const dims = free.length;
  let expected = 0;
  for (let m = 0; m < w.shapes; m++) {
    let copies = Infinity;
    for (let d = 0; d < dims; d++) {
      const want = w.demand[m * dims + d] as number;
      if (want > 0) copies = Math.min(copies, (free[d] as number) / want);
    }
    if (copies === Infinity) copies = 0;
    let stranded = 0;
    for (let d = 0; d < dims; d++) stranded += Math.max(0, (free[d] as number) - copies * (w.demand[m * dims + d] as number)) / (w.unit[d] as number);
    expected += (w.weight[m] as number) * stranded;
  }
  return expected;
}

function freeVector(state: ClusterState, w: Workload, node: number, into: Float64Array): void {
  into[0] = Math.max(0, state.freeCpu[node] as number);
  into[1] = Math.max(0, state.freeMemory[node] as number);
  for (let j = 0; j < w.devices.length; j++) into[2 + j] = state.devices?.freeCount(node, w.devices[j] as string) ?? 0;
}

export const fragmentation: Scorer = {
  name: SCORER_FRAGMENTATION,
  forClass(cls: TaskClass, ctx) {
    if (cls.strategy !== "fragmentation") return undefined;
    let w = workloads.get(ctx.state);
    if (w === undefined) {
      w = buildWorkload(ctx);
      workloads.set(ctx.state, w);
    }
    const workload = w;
    const dims = 2 + workload.devices.length;
    const task = new Float64Array(dims);
    task[0] = cls.cpu;
    task[1] = cls.memory;
    workload.devices.forEach((name, j) => (task[2 + j] = deviceCount(cls.spec.resources, name)));
    let size = 0;
    for (let d = 0; d < dims; d++) size += (task[d] as number) / (workload.unit[d] as number);
    const before = new Float64Array(dims);
    const after = new Float64Array(dims);
    const { state } = ctx;
    return (node) => {
      freeVector(state, workload, node, before);
      for (let d = 0; d < dims; d++) after[d] = Math.max(0, (before[d] as number) - (task[d] as number));
      const growth = expectedStranded(workload, after) - expectedStranded(workload, before);
      const y = Math.max(0, growth / Math.max(size, 1e-9) + 1);
      return (1 - y) / (1 + y);
    };
  },
};
