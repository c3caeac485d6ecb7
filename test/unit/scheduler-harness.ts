/**
 * Builders for scheduler tests and benchmarks: nodes, job specs, pending tasks
 * and allocations with sensible defaults, so each test states only what it is about.
 */
import type { JobSpec, NodeInfo, NodeState, Resources } from "../../src/common/types.js";
import type { Allocation, ClusterSnapshot, TaskToPlace } from "../../src/manager/scheduler/index.js";

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export interface NodeOptions {
  cpu?: number;
  memory?: number;
  disk?: number;
  state?: NodeState;
  attributes?: Record<string, string>;
  cachedPackages?: string[];
  lxc?: boolean;
  process?: boolean;
}

/** A node with 8 cores, 16 GiB memory, 100 GiB disk, all allocatable, ready, both drivers. */
export function makeNode(id: string, opts: NodeOptions = {}): NodeInfo {
  const allocatable: Resources = { cpu: opts.cpu ?? 8, memory: opts.memory ?? 16 * GiB, disk: opts.disk ?? 100 * GiB };
  return {
    id,
    url: `http://${id}.test:7401`,
    host: `${id}.test`,
    state: opts.state ?? "ready",
    capacity: { ...allocatable },
    allocatable,
    attributes: { os: "linux", ...opts.attributes },
    cachedPackages: opts.cachedPackages ?? [],
    portRange: [20000, 32000],
    drivers: { lxc: opts.lxc ?? true, process: opts.process ?? true },
    lastReportAt: 0,
  };
}

export interface SpecOptions extends Partial<Omit<JobSpec, "resources">> {
  cpu?: number;
  memory?: number;
  disk?: number;
  staticPorts?: number[];
}

/** A service job spec requesting 1 core, 1 GiB memory, 1 GiB disk by default. */
export function makeSpec(name: string, opts: SpecOptions = {}): JobSpec {
  const { cpu, memory, disk, staticPorts, ...rest } = opts;
  return {
    name,
    namespace: "default",
    type: "service",
    priority: 100,
    instances: 1,
    command: ["bin/run"],
    env: {},
    constraints: [],
    ports: (staticPorts ?? []).map((port, i) => ({ name: `p${i}`, static: port })),
    restart: { attempts: 3, delayMs: 1000, backoff: 2, maxDelayMs: 60000 },
    placement: { strategy: "binpack" },
    ...rest,
    resources: { cpu: cpu ?? 1, memory: memory ?? GiB, disk: disk ?? GiB },
  };
}

/** `count` pending instances of a job (default: spec.instances), ids `<job>/<i>`. */
export function makeTasks(spec: JobSpec, opts: { count?: number; jobId?: string; packageDigest?: string; firstIndex?: number } = {}): TaskToPlace[] {
  const jobId = opts.jobId ?? spec.name;
  const count = opts.count ?? spec.instances;
  const first = opts.firstIndex ?? 0;
  return Array.from({ length: count }, (_, i) => {
    const task: TaskToPlace = { taskId: `${jobId}/${first + i}`, jobId, spec };
    if (opts.packageDigest !== undefined) task.packageDigest = opts.packageDigest;
    return task;
  });
}

export function makeAllocation(taskId: string, nodeId: string, opts: { cpu?: number; memory?: number; disk?: number; priority?: number; jobId?: string; staticPorts?: number[] } = {}): Allocation {
  return {
    taskId,
    jobId: opts.jobId ?? taskId.split("/")[0] ?? taskId,
    nodeId,
    resources: { cpu: opts.cpu ?? 1, memory: opts.memory ?? GiB, disk: opts.disk ?? GiB },
    priority: opts.priority ?? 100,
    staticPorts: opts.staticPorts ?? [],
  };
}

export function snapshotOf(nodes: NodeInfo[], allocations: Allocation[] = []): ClusterSnapshot {
  return { nodes, allocations };
}

/** Node ids `prefix-00000` … in order, so id order equals index order. */
export function nodeIds(count: number, prefix = "n"): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, "0")}`);
}
