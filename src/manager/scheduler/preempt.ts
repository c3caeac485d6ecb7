/**
 * Preemption: when a task fits nowhere, look for a node where evicting
 * allocations of strictly lower priority makes room.
 *
 * On one node, victims are chosen lowest priority first; within a priority,
 * the smallest allocation that covers what is still missing, else the one
 * covering most of it (fewest victims); then victims that turned out not to be
 * needed are dropped again. Allocations holding a static port the task needs
 * must go regardless of size (and if one of them is not of lower priority, the
 * node is out). So must, when the task asks for devices the node has none of
 * free, the fewest lower-priority holders of matching instances that free
 * enough (lowest priority first); they count towards the resources too.
 *
 * Across nodes the plan that hurts least wins: lowest highest-victim priority,
 * then fewest victims, then least evicted capacity, then node id. Like the
 * normal scan, the search stops after `sampleSize` nodes with a workable plan.
 */
import type { NodeInfo } from "../../common/types.js";
import type { ClusterState } from "./cluster-state.js";
import { deviceRequestsOf } from "./checkers/devices.js";
import { RESOURCE_EPSILON } from "./checkers/resources.js";
import type { CompiledDeviceRequest } from "./devices-state.js";
import { FEASIBLE } from "./reasons.js";
import type { TaskClass } from "./task-class.js";
import type { Allocation } from "./types.js";

export interface PreemptionPlan {
  node: number;
  victims: Allocation[];
}

interface RankedPlan extends PreemptionPlan {
  highestVictimPriority: number;
  evictedSize: number;
}

/** Remaining shortfall of a node in each resource (≤ 0 means satisfied). */
interface Shortfall {
  cpu: number;
  memory: number;
  disk: number;
}

function satisfied(s: Shortfall): boolean {
  return s.cpu <= RESOURCE_EPSILON && s.memory <= RESOURCE_EPSILON && s.disk <= RESOURCE_EPSILON;
}

function release(s: Shortfall, a: Allocation, sign: 1 | -1): void {
  s.cpu -= sign * a.resources.cpu;
  s.memory -= sign * a.resources.memory;
  s.disk -= sign * a.resources.disk;
}

/** Fraction of the outstanding shortfall that evicting `a` would cover, summed over resources. */
function coverage(s: Shortfall, a: Allocation): number {
  let covered = 0;
  if (s.cpu > RESOURCE_EPSILON) covered += Math.min(a.resources.cpu, s.cpu) / s.cpu;
  if (s.memory > RESOURCE_EPSILON) covered += Math.min(a.resources.memory, s.memory) / s.memory;
  if (s.disk > RESOURCE_EPSILON) covered += Math.min(a.resources.disk, s.disk) / s.disk;
  return covered;
}

function sizeOn(state: ClusterState, node: number, a: Allocation): number {
  const cpu = state.allocatableCpu[node] as number;
  const memory = state.allocatableMemory[node] as number;
  return (cpu > 0 ? a.resources.cpu / cpu : 0) + (memory > 0 ? a.resources.memory / memory : 0);
}

/** Victim order on `node`: lowest priority first, then smallest. */
function cheapestFirst(state: ClusterState, node: number): (a: Allocation, b: Allocation) => number {
  return (a, b) => a.priority - b.priority || sizeOn(state, node, a) - sizeOn(state, node, b);
}

/** The cheapest set of victims on `node` that makes room for one instance of `cls`, if any. */
export function planOnNode(cls: TaskClass, state: ClusterState, node: number): PreemptionPlan | undefined {
  const shortfall: Shortfall = {
    cpu: cls.cpu - (state.freeCpu[node] as number),
    memory: cls.memory - (state.freeMemory[node] as number),
    disk: cls.disk - (state.freeDisk[node] as number),
  };
  const mandatory: Allocation[] = [];
  for (const port of cls.staticPorts) {
    const holder = state.portHolder(node, port);
    if (holder === undefined || mandatory.includes(holder)) continue;
    if (holder.priority >= cls.priority) return undefined;
    mandatory.push(holder);
    release(shortfall, holder, 1);
  }

  const requests = deviceRequestsOf(cls);
  if (requests !== undefined) {
    const forDevices = deviceVictims(cls, state, node, requests, mandatory);
    if (forDevices === undefined) return undefined;
    for (const victim of forDevices) {
      mandatory.push(victim);
      release(shortfall, victim, 1);
    }
  }

  const candidates = state.allocationsOn(node).filter((a) => a.priority < cls.priority && !mandatory.includes(a));
  const reachable: Shortfall = { ...shortfall };
  for (const a of candidates) release(reachable, a, 1);
  if (!satisfied(reachable)) return undefined;

  candidates.sort(cheapestFirst(state, node));
  const chosen: Allocation[] = [];
  const taken = new Set<Allocation>();
  while (!satisfied(shortfall)) {
    const first = candidates.find((a) => !taken.has(a));
    if (first === undefined) return undefined;
    const tier = candidates.filter((a) => a.priority === first.priority && !taken.has(a));
    let pick = tier.find((a) => {
      const after = { ...shortfall };
      release(after, a, 1);
      return satisfied(after);
    });
    if (pick === undefined) {
      pick = tier[0] as Allocation;
      let bestCoverage = coverage(shortfall, pick);
      for (const a of tier) {
        const c = coverage(shortfall, a);
        if (c > bestCoverage) {
          pick = a;
          bestCoverage = c;
        }
      }
    }
    taken.add(pick);
    chosen.push(pick);
    release(shortfall, pick, 1);
  }
  // Greedy choices can leave early picks redundant; drop them, most valuable first.
  for (let i = chosen.length - 1; i >= 0; i--) {
    const victim = chosen[i] as Allocation;
    release(shortfall, victim, -1);
    if (satisfied(shortfall)) chosen.splice(i, 1);
    else release(shortfall, victim, 1);
  }
  return { node, victims: [...mandatory, ...chosen] };
}

/**
 * The holders of device instances that must go for `requests` to be met on
 * `node`, given that `evicted` go anyway: none when they can be met already;
 * else the fewest lower-priority holders of a requested device, lowest
 * priority first, then smallest; undefined when evicting all of them would
 * not do. Leaves the device state as it found it.
 */
function deviceVictims(cls: TaskClass, state: ClusterState, node: number, requests: readonly CompiledDeviceRequest[], evicted: readonly Allocation[]): Allocation[] | undefined {
  const devices = state.devices;
  if (devices === undefined) return undefined;
  const released: Allocation[] = [];
  const free = (a: Allocation) => {
    devices.release(node, a.devices!);
    released.push(a);
  };
  const fits = () => devices.choose(node, requests).ok;
  try {
    for (const a of evicted) if (a.devices !== undefined) free(a);
    if (fits()) return [];
    const wanted = new Set(requests.map((r) => r.name));
    const holders = state
      .allocationsOn(node)
      .filter((a) => a.priority < cls.priority && !evicted.includes(a) && a.devices?.some((d) => wanted.has(d.name)))
      .sort(cheapestFirst(state, node));
    const chosen: Allocation[] = [];
    for (const a of holders) {
      free(a);
      chosen.push(a);
      if (fits()) break;
    }
    if (!fits()) return undefined;
    // Greedy picks can be redundant (an instance not matching the request's constraints): keep only those needed.
    for (let i = chosen.length - 1; i >= 0; i--) {
      const victim = chosen[i] as Allocation;
      devices.hold(node, victim.devices!);
      if (fits()) {
        chosen.splice(i, 1);
        released.splice(released.indexOf(victim), 1);
      } else devices.release(node, victim.devices!);
    }
    return chosen;
  } finally {
    for (const a of released) devices.hold(node, a.devices!);
  }
}

function better(a: RankedPlan, b: RankedPlan, nodes: readonly NodeInfo[]): boolean {
  if (a.highestVictimPriority !== b.highestVictimPriority) return a.highestVictimPriority < b.highestVictimPriority;
  if (a.victims.length !== b.victims.length) return a.victims.length < b.victims.length;
  if (a.evictedSize !== b.evictedSize) return a.evictedSize < b.evictedSize;
  return (nodes[a.node] as NodeInfo).id < (nodes[b.node] as NodeInfo).id;
}

/** The best preemption plan among up to `sampleSize` workable nodes, scanning from `start`. */
export function findPreemption(cls: TaskClass, state: ClusterState, start: number, sampleSize: number): PreemptionPlan | undefined {
  if (cls.priority <= state.lowestPriority) return undefined;
  const only = cls.chain.only?.nodes;
  const n = only === undefined ? state.size : only.length;
  let best: RankedPlan | undefined;
  let workable = 0;
  for (let visited = 0, cursor = start; visited < n; visited++, cursor = cursor + 1 === n ? 0 : cursor + 1) {
    const node = only === undefined ? cursor : (only[visited] as number);
    if (cls.chain.preemptionFailure(node) !== FEASIBLE) continue;
    const plan = planOnNode(cls, state, node);
    if (plan === undefined || plan.victims.length === 0) continue;
    const ranked: RankedPlan = {
      ...plan,
      highestVictimPriority: Math.max(...plan.victims.map((v) => v.priority)),
      evictedSize: plan.victims.reduce((sum, v) => sum + sizeOn(state, node, v), 0),
    };
    if (best === undefined || better(ranked, best, state.nodes)) best = ranked;
    if (++workable >= sampleSize) break;
  }
  return best === undefined ? undefined : { node: best.node, victims: best.victims };
}
