/**
 * The smallest change to an unplaceable task's request that would let it fit
 * somewhere now: "fits agent-3 with memory ≤ 23GiB", "fits 2 nodes without
 * constraint os = windows". Computed, not guessed: every suggestion is a
 * variant of the task's spec run through the same checker chain against the
 * same cluster state, and it lists the nodes that would accept it.
 *
 * Variants tried: each rule the user wrote relaxed on its own (one
 * constraint dropped, static ports made dynamic, the per-node spread limit
 * raised, the other isolation), each alone and each with the request lowered
 * to what a node has free; and the request lowered under the rules as they
 * are. A change's cost orders them: lowering the request costs the largest
 * relative cut in any dimension (0..1), dropping a constraint 1, switching
 * isolation 0.75, dynamic ports or a higher spread limit 0.5. Preemption is
 * not counted on: a suggestion fits in what is free now.
 */
import type { JobSpec, Resources } from "../../common/types.js";
import { formatBytesAtMost } from "../../common/units.js";
import { constraintText } from "./checkers/constraints.js";
import { RESOURCE_EPSILON } from "./checkers/resources.js";
import type { ClusterState } from "./cluster-state.js";
import { FEASIBLE } from "./reasons.js";
import type { TaskClass } from "./task-class.js";

export interface SmallestChange {
  /** For people: "fits agent-3 with memory ≤ 23GiB". */
  text: string;
  /** How many nodes would accept the changed task now. */
  nodes: number;
  /** Some of them (at most MAX_NODE_IDS), smallest id first. */
  nodeIds: string[];
  /** 0 < cost; smaller is a smaller change. */
  cost: number;
  /** The request that would fit, when the change lowers it (only the changed dimensions). */
  resources?: Partial<Resources>;
  /** The rule relaxed, when one is ("without constraint os = windows"). */
  relaxed?: string;
}

/** How many suggestions an unplaced task carries. */
export const MAX_SUGGESTIONS = 3;
const MAX_NODE_IDS = 3;
const MIB = 1024 * 1024;

/** Builds a class for a variant of the failed class's spec, sharing the cluster state and reason table. */
export type VariantClass = (spec: JobSpec) => TaskClass;

interface Relaxation {
  /** "without constraint os = windows"; empty for the rules as they are. */
  change: string;
  cost: number;
  spec: JobSpec;
}

function relaxations(spec: JobSpec, cls: TaskClass): Relaxation[] {
  const out: Relaxation[] = [{ change: "", cost: 0, spec }];
  spec.constraints.forEach((c, i) => out.push({ change: `without constraint ${constraintText(c)}`, cost: 1, spec: { ...spec, constraints: spec.constraints.filter((_, j) => j !== i) } }));
  if (cls.staticPorts.length > 0) {
    out.push({ change: `with dynamic ports instead of ${cls.staticPorts.join(", ")}`, cost: 0.5, spec: { ...spec, ports: spec.ports.map(({ static: _static, ...p }) => p) } });
  }
  if (spec.placement.maxPerNode !== undefined) {
    const { maxPerNode: _max, ...placement } = spec.placement;
    out.push({ change: "maxPerNode", cost: 0.5, spec: { ...spec, placement } });
  }
  // Allocs run under the process driver only (docs/allocs.md): no other isolation to suggest.
  if (spec.isolation !== undefined && !spec.alloc) {
    const other = spec.isolation === "lxc" ? "process" : "lxc";
    out.push({ change: `with isolation ${other}`, cost: 0.75, spec: { ...spec, isolation: other } });
  }
  return out;
}

function feasibleNodes(cls: TaskClass, state: ClusterState): number[] {
  const chain = cls.chain;
  const candidates = chain.only?.nodes;
  const out: number[] = [];
  const n = candidates === undefined ? state.size : candidates.length;
  for (let k = 0; k < n; k++) {
    const node = candidates === undefined ? k : (candidates[k] as number);
    if (chain.firstFailure(node) === FEASIBLE) out.push(node);
  }
  return out;
}

interface Cut {
  resources: Partial<Resources>;
  cost: number;
  text: string;
}

/** The request lowered to what `node` has free, in the dimensions where it asks for more; undefined if a dimension has nothing left. */
function cutFor(request: Resources, state: ClusterState, node: number): Cut | undefined {
  const free = { cpu: state.freeCpu[node] as number, memory: state.freeMemory[node] as number, disk: state.freeDisk[node] as number };
  const resources: Partial<Resources> = {};
  const parts: string[] = [];
  let cost = 0;
  if (request.cpu > free.cpu + RESOURCE_EPSILON) {
    const cpu = Math.floor(free.cpu * 100) / 100;
    if (cpu <= 0) return undefined;
    resources.cpu = cpu;
    parts.push(`cpu ≤ ${cpu}`);
    cost = Math.max(cost, (request.cpu - cpu) / request.cpu);
  }
  for (const dim of ["memory", "disk"] as const) {
    if (request[dim] <= free[dim] + RESOURCE_EPSILON) continue;
    const at = formatBytesAtMost(free[dim]);
    if (at.bytes < MIB) return undefined;
    resources[dim] = at.bytes;
    parts.push(`${dim} ≤ ${at.text}`);
    cost = Math.max(cost, (request[dim] - at.bytes) / request[dim]);
  }
  return parts.length === 0 ? undefined : { resources, cost, text: parts.join(" and ") };
}

function fits(request: Resources, state: ClusterState, node: number): boolean {
  return request.cpu <= (state.freeCpu[node] as number) + RESOURCE_EPSILON && request.memory <= (state.freeMemory[node] as number) + RESOURCE_EPSILON && request.disk <= (state.freeDisk[node] as number) + RESOURCE_EPSILON;
}

function where(state: ClusterState, nodes: readonly number[]): string {
  return nodes.length === 1 ? (state.nodes[nodes[0] as number]?.id ?? "") : `${nodes.length} nodes`;
}

function idsOf(state: ClusterState, nodes: readonly number[]): string[] {
  return nodes
    .map((n) => state.nodes[n]?.id ?? "")
    .sort()
    .slice(0, MAX_NODE_IDS);
}

/** The spread limit that would let the task onto some node: one more than the fewest instances any candidate holds. */
function raisedLimit(cls: TaskClass, nodes: readonly number[]): number {
  let fewest = Infinity;
  for (const n of nodes) fewest = Math.min(fewest, cls.jobCounts.get(n) ?? 0);
  return fewest + 1;
}

export function smallestChanges(cls: TaskClass, state: ClusterState, variant: VariantClass): SmallestChange[] {
  const request = cls.spec.resources;
  const found: SmallestChange[] = [];
  const suggest = (r: Relaxation, nodes: number[], cut?: Cut): void => {
    let change = r.change;
    if (change === "maxPerNode") {
      const limit = raisedLimit(cls, nodes);
      nodes = nodes.filter((n) => (cls.jobCounts.get(n) ?? 0) < limit);
      change = `with placement.maxPerNode ${limit}`;
    }
    const text = [change, cut ? `with ${cut.text}` : ""].filter((s) => s !== "").join(" and ");
    found.push({ text: `fits ${where(state, nodes)} ${text}`, nodes: nodes.length, nodeIds: idsOf(state, nodes), cost: r.cost + (cut?.cost ?? 0), ...(cut ? { resources: cut.resources } : {}), ...(change ? { relaxed: change } : {}) });
  };
  for (const r of relaxations(cls.spec, cls)) {
    if (r.change !== "") {
      const accepting = feasibleNodes(variant(r.spec), state);
      if (accepting.length > 0) {
        suggest(r, accepting);
        continue;
      }
    }
    // The rules (relaxed or not) with the request left out: the nodes that refuse only for lack of resources.
    const open = feasibleNodes(variant({ ...r.spec, resources: { cpu: 0, memory: 0, disk: 0 } }), state);
    let best: { node: number; cut: Cut } | undefined;
    for (const node of open) {
      const cut = cutFor(request, state, node);
      if (cut === undefined) continue;
      const id = state.nodes[node]?.id ?? "";
      if (!best || cut.cost < best.cut.cost || (cut.cost === best.cut.cost && id < (state.nodes[best.node]?.id ?? ""))) best = { node, cut };
    }
    if (!best) continue;
    const lowered = { ...request, ...best.cut.resources };
    suggest(
      r,
      open.filter((n) => fits(lowered, state, n)),
      best.cut,
    );
  }
  found.sort((a, b) => a.cost - b.cost || b.nodes - a.nodes || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  return found.slice(0, MAX_SUGGESTIONS);
}
