/**
 * The scheduler's working copy of the cluster for one `placeTasks` call.
 *
 * Free resources live in typed arrays indexed by node position so the scan
 * loop touches flat memory only. Placements and evictions made during the
 * call update this state, so later tasks of the same call see them.
 */
import { TorcaError } from "../../common/errors.js";
import type { NodeInfo, Resources } from "../../common/types.js";
import { FEASIBLE, type ReasonTable } from "./reasons.js";
import type { Allocation, ClusterSnapshot } from "./types.js";

export class ClusterState {
  readonly nodes: readonly NodeInfo[];
  readonly size: number;
  readonly freeCpu: Float64Array;
  readonly freeMemory: Float64Array;
  readonly freeDisk: Float64Array;
  readonly allocatableCpu: Float64Array;
  readonly allocatableMemory: Float64Array;
  /** FEASIBLE when the node is ready, otherwise why it takes no tasks. */
  readonly unavailableReason: Uint16Array;
  /** Lowest priority among the allocations; a task at or below it can preempt nothing. */
  lowestPriority = Infinity;
  /**
   * Bumped whenever resources are released (preemption). Placements only ever
   * consume, so a "fits nowhere" verdict stays true until this changes.
   */
  releaseEpoch = 0;

  private readonly indexById = new Map<string, number>();
  /** Per node: static port → the allocation holding it. */
  private readonly portHolders: (Map<number, Allocation> | undefined)[];
  /** Per job of the pending tasks: node index → instances of that job on it. */
  private readonly jobCounts = new Map<string, Map<number, number>>();
  /** Bound allocations on known nodes, in input order; placements are appended. */
  private readonly bound: Allocation[] = [];
  private readonly boundNodes: number[] = [];
  /** Built only when preemption needs it: most calls never do. */
  private allocationsByNode: Allocation[][] | undefined;

  constructor(snapshot: ClusterSnapshot, trackedJobs: Iterable<string>, reasons: ReasonTable) {
    const nodes = snapshot.nodes;
    const n = nodes.length;
    this.nodes = nodes;
    this.size = n;
    this.freeCpu = new Float64Array(n);
    this.freeMemory = new Float64Array(n);
    this.freeDisk = new Float64Array(n);
    this.allocatableCpu = new Float64Array(n);
    this.allocatableMemory = new Float64Array(n);
    this.unavailableReason = new Uint16Array(n);
    this.portHolders = new Array<Map<number, Allocation> | undefined>(n);
    for (const jobId of trackedJobs) this.jobCounts.set(jobId, new Map());

    for (let i = 0; i < n; i++) {
      const node = nodes[i] as NodeInfo;
      if (this.indexById.has(node.id)) throw new TorcaError("internal", `scheduler: duplicate node id ${JSON.stringify(node.id)} in snapshot`);
      this.indexById.set(node.id, i);
      const a = node.allocatable;
      this.freeCpu[i] = this.allocatableCpu[i] = a.cpu;
      this.freeMemory[i] = this.allocatableMemory[i] = a.memory;
      this.freeDisk[i] = a.disk;
      this.unavailableReason[i] = node.state === "ready" ? FEASIBLE : node.state === "draining" ? reasons.nodeDraining : reasons.nodeLost;
    }

    for (const alloc of snapshot.allocations) {
      const index = this.indexById.get(alloc.nodeId);
      // An allocation on a node that has left the snapshot uses no machine we could place on.
      if (index === undefined) continue;
      assertValidResources(alloc.resources, `allocation ${alloc.taskId}`);
      this.bind(index, alloc);
      if (alloc.priority < this.lowestPriority) this.lowestPriority = alloc.priority;
    }
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
    this.bind(node, alloc);
    this.allocationsByNode?.[node]?.push(alloc);
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
      for (let i = 0; i < this.bound.length; i++) (byNode[this.boundNodes[i] as number] as Allocation[]).push(this.bound[i] as Allocation);
      this.allocationsByNode = byNode;
    }
    return this.allocationsByNode[node] as Allocation[];
  }

  private bind(node: number, alloc: Allocation): void {
    this.freeCpu[node] -= alloc.resources.cpu;
    this.freeMemory[node] -= alloc.resources.memory;
    this.freeDisk[node] -= alloc.resources.disk;
    if (alloc.staticPorts.length > 0) {
      let holders = this.portHolders[node];
      if (holders === undefined) {
        holders = new Map();
        this.portHolders[node] = holders;
      }
      for (const port of alloc.staticPorts) holders.set(port, alloc);
    }
    const counts = this.jobCounts.get(alloc.jobId);
    if (counts !== undefined) counts.set(node, (counts.get(node) ?? 0) + 1);
    if (this.allocationsByNode === undefined) {
      this.bound.push(alloc);
      this.boundNodes.push(node);
    }
  }
}

/** Negative or non-finite resources are a bug upstream, never a "does not fit". */
export function assertValidResources(r: Resources, what: string): void {
  if (!(r.cpu >= 0 && r.memory >= 0 && r.disk >= 0 && Number.isFinite(r.cpu + r.memory + r.disk))) {
    throw new TorcaError("internal", `scheduler: ${what} has invalid resources ${JSON.stringify(r)}`);
  }
}
