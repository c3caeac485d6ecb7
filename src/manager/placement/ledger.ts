/**
 * The primary's view of the cell for one concurrent placement round, with a
 * version per node (Omega's shared cell state): free resources and held
 * static ports per node after the round's allocations, and a generation
 * bumped by every change committed on the node. Schedulers plan on a copy
 * taken at some generation; the committer (commit.ts) checks their plans
 * against the generations and free room now.
 */
import type { NodeInfo } from "../../common/types.js";
import type { Allocation, ClusterSnapshot } from "../scheduler/index.js";

export class CellLedger {
  readonly nodes: readonly NodeInfo[];
  readonly freeCpu: Float64Array;
  readonly freeMemory: Float64Array;
  readonly freeDisk: Float64Array;
  /** Per node: bumped by every committed placement or eviction there. */
  readonly generation: Uint32Array;
  /** The allocations bound now: the round's snapshot, less evictions, plus committed placements. */
  readonly allocations: Allocation[];
  private readonly byId = new Map<string, number>();
  private readonly ports: (Set<number> | undefined)[];

  constructor(snapshot: ClusterSnapshot) {
    const n = snapshot.nodes.length;
    this.nodes = snapshot.nodes;
    this.freeCpu = new Float64Array(n);
    this.freeMemory = new Float64Array(n);
    this.freeDisk = new Float64Array(n);
    this.generation = new Uint32Array(n);
    this.ports = new Array<Set<number> | undefined>(n);
    snapshot.nodes.forEach((node, i) => {
      this.byId.set(node.id, i);
      this.freeCpu[i] = node.allocatable.cpu;
      this.freeMemory[i] = node.allocatable.memory;
      this.freeDisk[i] = node.allocatable.disk;
    });
    this.allocations = [];
    for (const alloc of snapshot.allocations) this.bind(alloc);
  }

  indexOf(nodeId: string): number | undefined {
    return this.byId.get(nodeId);
  }

  portHeld(node: number, port: number): boolean {
    return this.ports[node]?.has(port) ?? false;
  }

  /** A copy to plan on: the nodes and the allocations bound now, with the generations they are at. */
  snapshot(): { snapshot: ClusterSnapshot; basis: Uint32Array } {
    return { snapshot: { nodes: this.nodes, allocations: [...this.allocations] }, basis: this.generation.slice() };
  }

  /** Binds an allocation (a committed placement, or one of the round's own). */
  bind(alloc: Allocation): void {
    this.allocations.push(alloc);
    const node = this.byId.get(alloc.nodeId);
    if (node === undefined) return;
    this.freeCpu[node] = (this.freeCpu[node] as number) - alloc.resources.cpu;
    this.freeMemory[node] = (this.freeMemory[node] as number) - alloc.resources.memory;
    this.freeDisk[node] = (this.freeDisk[node] as number) - alloc.resources.disk;
    if (alloc.staticPorts.length > 0) {
      let held = this.ports[node];
      if (held === undefined) this.ports[node] = held = new Set();
      for (const port of alloc.staticPorts) held.add(port);
    }
    this.generation[node] = (this.generation[node] as number) + 1;
  }

  /** Releases an evicted allocation (a preemption's victim). */
  release(taskId: string): void {
    const at = this.allocations.findIndex((a) => a.taskId === taskId);
    if (at < 0) return;
    const [alloc] = this.allocations.splice(at, 1) as [Allocation];
    const node = this.byId.get(alloc.nodeId);
    if (node === undefined) return;
    this.freeCpu[node] = (this.freeCpu[node] as number) + alloc.resources.cpu;
    this.freeMemory[node] = (this.freeMemory[node] as number) + alloc.resources.memory;
    this.freeDisk[node] = (this.freeDisk[node] as number) + alloc.resources.disk;
    for (const port of alloc.staticPorts) this.ports[node]?.delete(port);
    this.generation[node] = (this.generation[node] as number) + 1;
  }
}
