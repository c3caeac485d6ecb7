/**
 * The scheduler's working state of the cluster for one `placeTasks` call.
 *
 * Free resources live in typed arrays indexed by node position so the scan
 * loop touches flat memory only. Placements and evictions made during the
 * call update this state, so later tasks of the same call see them. The free
 * arrays are the cluster index's own (cluster-index.ts): a node's figures are
 * saved when the call first changes them and put back by `restore`, which
 * `placeTasks` calls however it ends, so the index leaves every call as it
 * entered it without a copy of every node per call.
 */
import type { NodeInfo } from "../../common/types.js";
import { ClusterIndex } from "./cluster-index.js";
import { reclaimableCapacityOf, type ReclaimableCapacity } from "./reclaim.js";
import { DeviceState } from "./devices-state.js";
import type { Allocation, ClusterSnapshot } from "./types.js";

export { assertValidResources, DRIVER_LXC, DRIVER_PROCESS } from "./cluster-index.js";

export class ClusterState {
  /** What the call started from, with the caches shared between calls. */
  readonly index: ClusterIndex;
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

  /** Per node this call changed: static port → the allocation holding it (the index's map for the others). */
  private readonly ownPorts = new Map<number, Map<number, Allocation>>();
  /** Nodes whose free figures this call changed, and their figures before (cpu, memory, disk). */
  private readonly touched: number[] = [];
  private readonly before: number[] = [];
  private readonly isTouched: Uint8Array;
  /** Per job of the pending tasks: node index → instances of that job on it. */
  private readonly jobCounts = new Map<string, Map<number, number>>();
  /** The snapshot's allocations, kept to build per-node lists lazily. */
  private readonly snapshotAllocations: readonly Allocation[];
  /** Placements made in this call, in order, with their node indexes. */
  private readonly placed: { node: number; alloc: Allocation }[] = [];
  /** Built only when preemption needs it: most calls never do. */
  private allocationsByNode: Allocation[][] | undefined;

  constructor(snapshot: ClusterSnapshot, trackedJobs: ReadonlySet<string>) {
    const index = (this.index = ClusterIndex.of(snapshot));
    this.nodes = snapshot.nodes;
    this.size = index.size;
    this.snapshotAllocations = snapshot.allocations;
    this.freeCpu = index.freeCpu;
    this.freeMemory = index.freeMemory;
    this.freeDisk = index.freeDisk;
    this.allocatableCpu = index.allocatableCpu;
    this.allocatableMemory = index.allocatableMemory;
    this.drivers = index.drivers;
    this.ready = index.ready;
    this.readyCount = index.readyCount;
    this.lowestPriority = index.lowestPriority;
    this.isTouched = new Uint8Array(index.size);
    for (const jobId of trackedJobs) this.jobCounts.set(jobId, index.jobCountsOf(jobId));
    const indexOf = (nodeId: string): number | undefined => index.indexOf(nodeId);
    this.reclaimable = reclaimableCapacityOf(snapshot, indexOf, index.size);
    this.devices = DeviceState.of(snapshot.nodes, snapshot.allocations, indexOf);
  }

  /** Every allocation of the snapshot (bound before this call). */
  get boundAllocations(): readonly Allocation[] {
    return this.snapshotAllocations;
  }

  indexOf(nodeId: string): number | undefined {
    return this.index.indexOf(nodeId);
  }

  /** Node index → instances of `jobId` on it (only for jobs passed as tracked). */
  jobCountsOf(jobId: string): Map<number, number> {
    let counts = this.jobCounts.get(jobId);
    if (counts === undefined) {
      counts = this.index.jobCountsOf(jobId);
      this.jobCounts.set(jobId, counts);
    }
    return counts;
  }

  portHolder(node: number, port: number): Allocation | undefined {
    return (this.ownPorts.get(node) ?? this.index.portHolders[node])?.get(port);
  }

  /** Puts back the free figures of every node this call changed. */
  restore(): void {
    for (let k = 0; k < this.touched.length; k++) {
      const node = this.touched[k] as number;
      this.freeCpu[node] = this.before[k * 3] as number;
      this.freeMemory[node] = this.before[k * 3 + 1] as number;
      this.freeDisk[node] = this.before[k * 3 + 2] as number;
    }
    this.touched.length = 0;
    this.before.length = 0;
  }

  /** Binds a new placement made in this call. */
  place(node: number, alloc: Allocation): void {
    this.touch(node);
    this.freeCpu[node] -= alloc.resources.cpu;
    this.freeMemory[node] -= alloc.resources.memory;
    this.freeDisk[node] -= alloc.resources.disk;
    if (alloc.staticPorts.length > 0) for (const port of alloc.staticPorts) this.portsOf(node).set(port, alloc);
    if (alloc.devices !== undefined) this.devices?.hold(node, alloc.devices);
    const counts = this.jobCounts.get(alloc.jobId);
    if (counts !== undefined) counts.set(node, (counts.get(node) ?? 0) + 1);
    if (this.allocationsByNode === undefined) this.placed.push({ node, alloc });
    else this.allocationsByNode[node]?.push(alloc);
  }

  /** Removes a preempted allocation; its resources and ports become free. */
  evict(node: number, alloc: Allocation): void {
    this.touch(node);
    this.freeCpu[node] += alloc.resources.cpu;
    this.freeMemory[node] += alloc.resources.memory;
    this.freeDisk[node] += alloc.resources.disk;
    if (alloc.staticPorts.length > 0) {
      const holders = this.portsOf(node);
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
        const index = this.index.indexOf(alloc.nodeId);
        if (index !== undefined) byNode[index]?.push(alloc);
      }
      for (const { node: index, alloc } of this.placed) byNode[index]?.push(alloc);
      this.allocationsByNode = byNode;
    }
    return this.allocationsByNode[node] as Allocation[];
  }

  /** Saves `node`'s free figures before this call first changes them. */
  private touch(node: number): void {
    if (this.isTouched[node] === 1) return;
    this.isTouched[node] = 1;
    this.touched.push(node);
    this.before.push(this.freeCpu[node] as number, this.freeMemory[node] as number, this.freeDisk[node] as number);
  }

  /** `node`'s port map, made this call's own (a copy of the index's) before it changes. */
  private portsOf(node: number): Map<number, Allocation> {
    let own = this.ownPorts.get(node);
    if (own === undefined) {
      own = new Map(this.index.portHolders[node]);
      this.ownPorts.set(node, own);
    }
    return own;
  }
}
