/**
 * The scheduler's working copy of the cluster for one `placeTasks` call.
 *
 * Free resources live in typed arrays indexed by node position so the scan
 * loop touches flat memory only. Placements and evictions made during the
 * call update this state, so later tasks of the same call see them.
 */
import { TorcaError } from "../../common/errors.js";
import type { NodeInfo, Resources } from "../../common/types.js";
import { reclaimableCapacityOf, type ReclaimableCapacity } from "./reclaim.js";
import { DeviceState } from "./devices-state.js";
import type { Allocation, ClusterSnapshot } from "./types.js";

export const DRIVER_LXC = 1;
export const DRIVER_PROCESS = 2;

interface NodeIndex {
  ids: string[];
  byId: Map<string, number>;
}

/**
 * id → position maps, remembered per nodes array. A caller that passes the
 * same array again saves rebuilding a 10,000-entry map on every call; the ids
 * are compared position by position each time, so a changed array is noticed
 * and re-indexed. Only the positions are cached, never node contents.
 */
const nodeIndexCache = new WeakMap<readonly NodeInfo[], NodeIndex>();

function nodeIndexOf(nodes: readonly NodeInfo[]): ReadonlyMap<string, number> {
  const cached = nodeIndexCache.get(nodes);
  if (cached !== undefined && cached.ids.length === nodes.length && cached.ids.every((id, i) => nodes[i]?.id === id)) return cached.byId;
  const ids: string[] = [];
  const byId = new Map<string, number>();
  for (let i = 0; i < nodes.length; i++) {
    const id = (nodes[i] as NodeInfo).id;
    if (byId.has(id)) throw new TorcaError("internal", `scheduler: duplicate node id ${JSON.stringify(id)} in snapshot`);
    byId.set(id, i);
    ids.push(id);
  }
  nodeIndexCache.set(nodes, { ids, byId });
  return byId;
}

export class ClusterState {
  readonly nodes: readonly NodeInfo[];
  readonly size: number;
  readonly freeCpu: Float64Array;
  readonly freeMemory: Float64Array;
  readonly freeDisk: Float64Array;
  readonly allocatableCpu: Float64Array;
  readonly allocatableMemory: Float64Array;
  /** Per node: DRIVER_LXC | DRIVER_PROCESS, the task drivers its agent offers. */
  readonly drivers: Uint8Array;
  /** 1 when the node is ready (takes tasks), else 0. */
  readonly ready: Uint8Array;
  readonly readyCount: number;
  /** Capacity prod tasks reserved but do not use, for classes that may use it; undefined when none is lent. */
  readonly reclaimable: ReclaimableCapacity | undefined;
  /** Lowest priority among the allocations; a task at or below it can preempt nothing. */
  lowestPriority = Infinity;
  /**
   * Bumped whenever resources are released (preemption). Placements only ever
   * consume, so a "fits nowhere" verdict stays true until this changes.
   */
  releaseEpoch = 0;
  /** Device instances free and held per node; undefined when no node offers devices. */
  readonly devices: DeviceState | undefined;

  private readonly indexById: ReadonlyMap<string, number>;
  /** Per node: static port → the allocation holding it. */
  private readonly portHolders: (Map<number, Allocation> | undefined)[];
  /** Per job of the pending tasks: node index → instances of that job on it. */
  private readonly jobCounts = new Map<string, Map<number, number>>();
  /** The snapshot's allocations, kept to build per-node lists lazily. */
  private readonly snapshotAllocations: readonly Allocation[];
  /** Placements made in this call, in order, with their node indexes. */
  private readonly placed: { node: number; alloc: Allocation }[] = [];
  /** Built only when preemption needs it: most calls never do. */
  private allocationsByNode: Allocation[][] | undefined;

  constructor(snapshot: ClusterSnapshot, trackedJobs: ReadonlySet<string>) {
    const nodes = snapshot.nodes;
    const n = nodes.length;
    this.nodes = nodes;
    this.size = n;
    this.snapshotAllocations = snapshot.allocations;
    const freeCpu = (this.freeCpu = new Float64Array(n));
    const freeMemory = (this.freeMemory = new Float64Array(n));
    const freeDisk = (this.freeDisk = new Float64Array(n));
    this.allocatableCpu = new Float64Array(n);
    this.allocatableMemory = new Float64Array(n);
    this.ready = new Uint8Array(n);
    this.drivers = new Uint8Array(n);
    let readyCount = 0;
    this.portHolders = new Array<Map<number, Allocation> | undefined>(n);
    for (const jobId of trackedJobs) this.jobCounts.set(jobId, new Map());

    const indexById = (this.indexById = nodeIndexOf(nodes));
    for (let i = 0; i < n; i++) {
      const node = nodes[i] as NodeInfo;
      const a = node.allocatable;
      assertValidResources(a, `node ${node.id} allocatable`);
      freeCpu[i] = this.allocatableCpu[i] = a.cpu;
      freeMemory[i] = this.allocatableMemory[i] = a.memory;
      freeDisk[i] = a.disk;
      this.drivers[i] = (node.drivers.lxc ? DRIVER_LXC : 0) | (node.drivers.process ? DRIVER_PROCESS : 0);
      if (node.state === "ready") {
        this.ready[i] = 1;
        readyCount++;
      }
    }
    this.readyCount = readyCount;
    this.reclaimable = reclaimableCapacityOf(snapshot, indexById, n);

    // The hot part of every call: one pass over all bound allocations. Kept
    // flat (no helper calls, one map lookup) because it runs for every task
    // in the cluster on every call.
    const allocations = snapshot.allocations;
    const onlyJob = trackedJobs.size === 1 ? (trackedJobs.values().next().value as string) : undefined;
    const onlyJobCounts = onlyJob === undefined ? undefined : this.jobCountsOf(onlyJob);
    let lowestPriority = Infinity;
    for (let k = 0; k < allocations.length; k++) {
      const alloc = allocations[k] as Allocation;
      const index = indexById.get(alloc.nodeId);
      // An allocation on a node that has left the snapshot uses no machine we could place on.
      if (index === undefined) continue;
      const r = alloc.resources;
      const cpu = r.cpu;
      const memory = r.memory;
      const disk = r.disk;
      if (!(cpu >= 0 && memory >= 0 && disk >= 0 && cpu + memory + disk < Infinity)) assertValidResources(r, `allocation ${alloc.taskId}`);
      freeCpu[index] -= cpu;
      freeMemory[index] -= memory;
      freeDisk[index] -= disk;
      if (alloc.staticPorts.length > 0) this.holdPorts(index, alloc);
      const counts = onlyJob === undefined ? this.jobCounts.get(alloc.jobId) : alloc.jobId === onlyJob ? onlyJobCounts : undefined;
      if (counts !== undefined) counts.set(index, (counts.get(index) ?? 0) + 1);
      if (alloc.priority < lowestPriority) lowestPriority = alloc.priority;
    }
    this.lowestPriority = lowestPriority;
    this.devices = DeviceState.of(nodes, allocations, (id) => indexById.get(id));
  }

  /** Every allocation of the snapshot (bound before this call). */
  get boundAllocations(): readonly Allocation[] {
    return this.snapshotAllocations;
  }

  indexOf(nodeId: string): number | undefined {
    return this.indexById.get(nodeId);
  }

  /** Node index → instances of `jobId` on it (only for jobs passed as tracked). */
  jobCountsOf(jobId: string): Map<number, number> {
    let counts = this.jobCounts.get(jobId);
    if (counts === undefined) {
      counts = new Map();
      this.jobCounts.set(jobId, counts);
    }
    return counts;
  }

  portHolder(node: number, port: number): Allocation | undefined {
    return this.portHolders[node]?.get(port);
  }

  /** Binds a new placement made in this call. */
  place(node: number, alloc: Allocation): void {
    this.freeCpu[node] -= alloc.resources.cpu;
    this.freeMemory[node] -= alloc.resources.memory;
    this.freeDisk[node] -= alloc.resources.disk;
    if (alloc.staticPorts.length > 0) this.holdPorts(node, alloc);
    if (alloc.devices !== undefined) this.devices?.hold(node, alloc.devices);
    const counts = this.jobCounts.get(alloc.jobId);
    if (counts !== undefined) counts.set(node, (counts.get(node) ?? 0) + 1);
    if (this.allocationsByNode === undefined) this.placed.push({ node, alloc });
    else this.allocationsByNode[node]?.push(alloc);
  }

  /** Removes a preempted allocation; its resources and ports become free. */
  evict(node: number, alloc: Allocation): void {
    this.freeCpu[node] += alloc.resources.cpu;
    this.freeMemory[node] += alloc.resources.memory;
    this.freeDisk[node] += alloc.resources.disk;
    const holders = this.portHolders[node];
    if (holders !== undefined) {
      for (const port of alloc.staticPorts) if (holders.get(port) === alloc) holders.delete(port);
    }
    if (alloc.devices !== undefined) this.devices?.release(node, alloc.devices);
    const counts = this.jobCounts.get(alloc.jobId);
    if (counts !== undefined) {
      const count = (counts.get(node) ?? 0) - 1;
      if (count > 0) counts.set(node, count);
      else counts.delete(node);
    }
    const onNode = this.allocationsOn(node) as Allocation[];
    const at = onNode.indexOf(alloc);
    if (at >= 0) onNode.splice(at, 1);
    this.releaseEpoch++;
  }

  /** Allocations currently bound to `node` (snapshot ones still alive plus this call's placements). */
  allocationsOn(node: number): readonly Allocation[] {
    if (this.allocationsByNode === undefined) {
      const byNode: Allocation[][] = Array.from({ length: this.size }, () => []);
      for (const alloc of this.snapshotAllocations) {
        const index = this.indexById.get(alloc.nodeId);
        if (index !== undefined) byNode[index]?.push(alloc);
      }
      for (const { node: index, alloc } of this.placed) byNode[index]?.push(alloc);
      this.allocationsByNode = byNode;
    }
    return this.allocationsByNode[node] as Allocation[];
  }

  private holdPorts(node: number, alloc: Allocation): void {
    let holders = this.portHolders[node];
    if (holders === undefined) {
      holders = new Map();
      this.portHolders[node] = holders;
    }
    for (const port of alloc.staticPorts) holders.set(port, alloc);
  }
}

/** Negative or non-finite resources are a bug upstream, never a "does not fit". */
export function assertValidResources(r: Resources, what: string): void {
  if (!(r.cpu >= 0 && r.memory >= 0 && r.disk >= 0 && Number.isFinite(r.cpu + r.memory + r.disk))) {
    throw new TorcaError("internal", `scheduler: ${what} has invalid resources ${JSON.stringify(r)}`);
  }
}
