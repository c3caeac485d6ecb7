/**
 * The scheduler's index over the cluster, kept between `placeTasks` calls
 * (one per nodes array, held weakly): what every call would otherwise rebuild
 * from the whole snapshot.
 *
 * - Free cpu, memory and disk per node after the snapshot's allocations, the
 *   static ports they hold and their per-job counts. A call whose allocations
 *   start with the allocations the index has applied (same objects, same
 *   order) only applies the rest; anything else (an allocation gone or
 *   reordered) rebuilds. Appending in order is what keeps the free figures
 *   bit for bit those of a fresh pass: floating-point sums depend on order.
 * - Per node, the node object, its state and its cached-package list,
 *   compared on every call: a replaced node or a changed state rebuilds the
 *   index, a new package list updates only that node's package marks.
 * - Caches that depend on nodes only, shared by every call: the reason table
 *   (so cached reason codes stay valid), per package digest the nodes that
 *   cache it, and per static signature the static checks' verdict on every
 *   node (`static-feasibility.ts`).
 *
 * Snapshot objects are values: a caller that changes an allocation, or a
 * node's attributes, resources or drivers, passes a new object (the
 * collector builds a new nodes array whenever a node changes in what
 * placement uses). A node's state and package list may be set in place (the
 * collector sets the package list from each report); the comparison above
 * sees it.
 */
import { TorcaError } from "../../common/errors.js";
import type { NodeInfo, Resources } from "../../common/types.js";
import { ReasonTable } from "./reasons.js";
import type { StaticFeasibility } from "./static-feasibility.js";
import type { Allocation, ClusterSnapshot } from "./types.js";

export const DRIVER_LXC = 1;
export const DRIVER_PROCESS = 2;

/** More reason texts than this (ports and constraints of many jobs) and the shared caches start over. */
const MAX_REASONS = 4096;
/** More static signatures than this and their verdicts start over. */
const MAX_STATIC_SIGNATURES = 512;

const indexes = new WeakMap<readonly NodeInfo[], ClusterIndex>();

export class ClusterIndex {
  readonly nodes: readonly NodeInfo[];
  readonly size: number;
  readonly allocatableCpu: Float64Array;
  readonly allocatableMemory: Float64Array;
  /** Per node: DRIVER_LXC | DRIVER_PROCESS, the task drivers its agent offers. */
  readonly drivers: Uint8Array;
  /** 1 when the node is ready (takes tasks), else 0. */
  readonly ready: Uint8Array;
  readonly readyCount: number;
  /** Free resources after every applied allocation (during a call, with its changes; cluster-state.ts puts them back). */
  readonly freeCpu: Float64Array;
  readonly freeMemory: Float64Array;
  readonly freeDisk: Float64Array;
  /** Per node: static port → the applied allocation holding it. */
  readonly portHolders: (Map<number, Allocation> | undefined)[];
  /** Lowest priority among the applied allocations. */
  lowestPriority = Infinity;

  reasons = new ReasonTable();
  /** Per package digest some node caches: 1 at the nodes that cache it; built on the first question. */
  private packageHolders: Map<string, Uint8Array> | undefined;
  /** The answer for digests no node caches. */
  private readonly noHolders: Uint8Array;
  /** Per static signature (static-feasibility.ts): the static checks' verdicts. */
  readonly staticVerdicts = new Map<string, StaticFeasibility>();

  private readonly byId = new Map<string, number>();
  /** Per job: the node index of each of its applied allocations (a push per allocation; counted per call). */
  private readonly jobNodes = new Map<string, number[]>();
  /** The allocations applied, in order. */
  private readonly applied: Allocation[] = [];
  // What each node looked like when indexed.
  private readonly seenStates: NodeInfo["state"][] = [];
  private readonly seenNodes: NodeInfo[] = [];
  private readonly seenPackages: string[][] = [];
  private readonly allocatableDisk: Float64Array;

  /** The index for `snapshot`, brought up to date (or built). */
  static of(snapshot: ClusterSnapshot): ClusterIndex {
    const known = indexes.get(snapshot.nodes);
    if (known !== undefined && known.matchesNodes() && known.extend(snapshot.allocations)) {
      known.bound();
      return known;
    }
    const fresh = new ClusterIndex(snapshot.nodes);
    fresh.extend(snapshot.allocations);
    indexes.set(snapshot.nodes, fresh);
    return fresh;
  }

  private constructor(nodes: readonly NodeInfo[]) {
    const n = nodes.length;
    this.nodes = nodes;
    this.size = n;
    this.allocatableCpu = new Float64Array(n);
    this.allocatableMemory = new Float64Array(n);
    this.allocatableDisk = new Float64Array(n);
    this.freeCpu = new Float64Array(n);
    this.freeMemory = new Float64Array(n);
    this.freeDisk = new Float64Array(n);
    this.drivers = new Uint8Array(n);
    this.ready = new Uint8Array(n);
    this.portHolders = new Array<Map<number, Allocation> | undefined>(n);
    this.noHolders = new Uint8Array(n);
    let readyCount = 0;
    for (let i = 0; i < n; i++) {
      const node = nodes[i] as NodeInfo;
      if (this.byId.has(node.id)) throw new TorcaError("internal", `scheduler: duplicate node id ${JSON.stringify(node.id)} in snapshot`);
      this.byId.set(node.id, i);
      const a = node.allocatable;
      assertValidResources(a, `node ${node.id} allocatable`);
      this.freeCpu[i] = this.allocatableCpu[i] = a.cpu;
      this.freeMemory[i] = this.allocatableMemory[i] = a.memory;
      this.freeDisk[i] = this.allocatableDisk[i] = a.disk;
      this.drivers[i] = driversOf(node);
      if (node.state === "ready") {
        this.ready[i] = 1;
        readyCount++;
      }
      this.seenStates.push(node.state);
      this.seenNodes.push(node);
      this.seenPackages.push(node.cachedPackages);
    }
    this.readyCount = readyCount;
  }

  indexOf(nodeId: string): number | undefined {
    return this.byId.get(nodeId);
  }

  /** Node index → applied allocations of `jobId` there, as a new map the caller owns. */
  jobCountsOf(jobId: string): Map<number, number> {
    const counts = new Map<number, number>();
    for (const node of this.jobNodes.get(jobId) ?? []) counts.set(node, (counts.get(node) ?? 0) + 1);
    return counts;
  }

  /** Per node, 1 when it caches `digest`, else 0; shared, never to be changed by a caller. */
  packageHoldersOf(digest: string): Uint8Array {
    if (this.packageHolders === undefined) {
      this.packageHolders = new Map();
      for (let i = 0; i < this.size; i++) this.markPackages(i, this.seenPackages[i] as string[], 1);
    }
    return this.packageHolders.get(digest) ?? this.noHolders;
  }

  /**
   * The nodes still look as they did when indexed. A node whose package
   * cache changed keeps its place; only its package answers are forgotten.
   */
  private matchesNodes(): boolean {
    const nodes = this.nodes;
    if (nodes.length !== this.size) return false;
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as NodeInfo;
      // Identity and state only: reading every node's nested objects on every call would cost more than the scan.
      if (node !== this.seenNodes[i] || node.state !== this.seenStates[i]) return false;
      if (node.cachedPackages !== this.seenPackages[i]) {
        this.markPackages(i, this.seenPackages[i] as string[], 0);
        this.markPackages(i, node.cachedPackages, 1);
        this.seenPackages[i] = node.cachedPackages;
      }
    }
    return true;
  }

  private markPackages(node: number, digests: readonly string[], mark: 0 | 1): void {
    const holders = this.packageHolders;
    if (holders === undefined) return;
    for (const digest of digests) {
      let marks = holders.get(digest);
      if (marks === undefined) {
        if (mark === 0) continue;
        marks = new Uint8Array(this.size);
        holders.set(digest, marks);
      }
      marks[node] = mark;
    }
  }

  /** Applies the allocations past those already applied; false when `allocations` does not start with them. */
  private extend(allocations: readonly Allocation[]): boolean {
    const applied = this.applied;
    const known = applied.length;
    if (allocations.length < known) return false;
    for (let k = 0; k < known; k++) if (allocations[k] !== applied[k]) return false;
    const { freeCpu, freeMemory, freeDisk, byId } = this;
    let lowestPriority = this.lowestPriority;
    for (let k = known; k < allocations.length; k++) {
      const alloc = allocations[k] as Allocation;
      applied.push(alloc);
      const index = byId.get(alloc.nodeId);
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
      if (alloc.staticPorts.length > 0) holdPorts(this.portHolders, index, alloc);
      const onNodes = this.jobNodes.get(alloc.jobId);
      if (onNodes === undefined) this.jobNodes.set(alloc.jobId, [index]);
      else onNodes.push(index);
      if (alloc.priority < lowestPriority) lowestPriority = alloc.priority;
    }
    this.lowestPriority = lowestPriority;
    return true;
  }

  /** Keeps the caches that grow with distinct jobs within bounds. */
  private bound(): void {
    if (this.reasons.size > MAX_REASONS) {
      this.reasons = new ReasonTable();
      this.staticVerdicts.clear();
    } else if (this.staticVerdicts.size > MAX_STATIC_SIGNATURES) this.staticVerdicts.clear();
  }
}

function holdPorts(portHolders: (Map<number, Allocation> | undefined)[], node: number, alloc: Allocation): void {
  let holders = portHolders[node];
  if (holders === undefined) {
    holders = new Map();
    portHolders[node] = holders;
  }
  for (const port of alloc.staticPorts) holders.set(port, alloc);
}

function driversOf(node: NodeInfo): number {
  return (node.drivers.lxc ? DRIVER_LXC : 0) | (node.drivers.process ? DRIVER_PROCESS : 0);
}

/** Negative or non-finite resources are a bug upstream, never a "does not fit". */
export function assertValidResources(r: Resources, what: string): void {
  if (!(r.cpu >= 0 && r.memory >= 0 && r.disk >= 0 && Number.isFinite(r.cpu + r.memory + r.disk))) {
    throw new TorcaError("internal", `scheduler: ${what} has invalid resources ${JSON.stringify(r)}`);
  }
}
