/**
 * Device instances per node for one `placeTasks` call: which exist (the
 * nodes' ads), which are held (the allocations' recorded assignments, then
 * this call's placements), and the choice of concrete instances for a task.
 *
 * Invariant: an instance of a device that is not shareable is held by at most
 * one allocation; a shareable one by any number (the least shared are chosen
 * first). Built only when some node offers devices, so cells without any pay
 * nothing.
 */
import type { DeviceAssignment, NodeDeviceGroup, NodeInfo } from "../../common/types.js";
import type { Allocation } from "./types.js";

interface GroupState {
  readonly shareable: boolean;
  readonly ids: readonly string[];
  readonly attributes: readonly Record<string, string>[];
  readonly indexById: ReadonlyMap<string, number>;
  /** Per instance: how many allocations hold it. */
  readonly holders: Int32Array;
}

/** One `resources.devices` entry, ready to match instances. */
export interface CompiledDeviceRequest {
  readonly name: string;
  readonly count: number;
  /** The instance's attributes meet every constraint of the request. */
  matches(attributes: Record<string, string>): boolean;
}

/** Why a node cannot give a task its devices: the request that failed and how. */
export type DeviceShortfall =
  | { request: number; kind: "missing" }
  | { request: number; kind: "mismatch"; matching: number }
  | { request: number; kind: "busy"; free: number };

export type DeviceChoice = { ok: true; devices: DeviceAssignment[] } | ({ ok: false } & DeviceShortfall);

function groupState(group: NodeDeviceGroup): GroupState {
  const ids = group.instances.map((i) => i.id);
  return {
    shareable: group.shareable,
    ids,
    attributes: group.instances.map((i) => i.attributes),
    indexById: new Map(ids.map((id, i) => [id, i])),
    holders: new Int32Array(ids.length),
  };
}

export class DeviceState {
  private constructor(private readonly byNode: readonly (ReadonlyMap<string, GroupState> | undefined)[]) {}

  /** The devices of `nodes` with the instances `allocations` hold; undefined when no node offers any. */
  static of(nodes: readonly NodeInfo[], allocations: readonly Allocation[], indexOf: (nodeId: string) => number | undefined): DeviceState | undefined {
    // Most cells offer no devices: answer that without building anything per node.
    if (!nodes.some((node) => node.devices !== undefined && node.devices.length > 0)) return undefined;
    const byNode = nodes.map((node) => (node.devices === undefined || node.devices.length === 0 ? undefined : new Map(node.devices.map((g) => [g.name, groupState(g)]))));
    const state = new DeviceState(byNode);
    for (const alloc of allocations) {
      if (alloc.devices === undefined) continue;
      const index = indexOf(alloc.nodeId);
      if (index !== undefined) state.hold(index, alloc.devices);
    }
    return state;
  }

  /** Marks the instances of `devices` held on `node` (ids the node no longer offers are ignored). */
  hold(node: number, devices: readonly DeviceAssignment[]): void {
    this.adjust(node, devices, 1);
  }

  release(node: number, devices: readonly DeviceAssignment[]): void {
    this.adjust(node, devices, -1);
  }

  /** Instances of `name` on `node` a task could still be given (every instance when shareable). */
  freeCount(node: number, name: string): number {
    const group = this.byNode[node]?.get(name);
    if (group === undefined) return 0;
    if (group.shareable) return group.ids.length;
    let free = 0;
    for (let i = 0; i < group.holders.length; i++) if (group.holders[i] === 0) free++;
    return free;
  }

  /** Instances of `name` on `node`, held or not. */
  totalCount(node: number, name: string): number {
    return this.byNode[node]?.get(name)?.ids.length ?? 0;
  }

  /**
   * Concrete instances for every request on `node`, or the first request that
   * cannot be met. Instances go in the order the node lists them; one task
   * never gets the same instance twice, even from two requests.
   */
  choose(node: number, requests: readonly CompiledDeviceRequest[]): DeviceChoice {
    const groups = this.byNode[node];
    const chosen = new Map<string, Set<number>>();
    const devices: DeviceAssignment[] = [];
    for (let r = 0; r < requests.length; r++) {
      const request = requests[r] as CompiledDeviceRequest;
      const group = groups?.get(request.name);
      if (group === undefined) return { ok: false, request: r, kind: "missing" };
      let taken = chosen.get(request.name);
      if (taken === undefined) {
        taken = new Set();
        chosen.set(request.name, taken);
      }
      const candidates: number[] = [];
      let matching = 0;
      for (let i = 0; i < group.ids.length; i++) {
        if (!request.matches(group.attributes[i] as Record<string, string>)) continue;
        matching++;
        if (!taken.has(i) && (group.shareable || group.holders[i] === 0)) candidates.push(i);
      }
      if (matching < request.count) return { ok: false, request: r, kind: "mismatch", matching };
      if (candidates.length < request.count) return { ok: false, request: r, kind: "busy", free: candidates.length };
      // Shareable instances: the least shared first (stable by position).
      if (group.shareable) candidates.sort((a, b) => (group.holders[a] as number) - (group.holders[b] as number) || a - b);
      const picked = candidates.slice(0, request.count);
      for (const i of picked) taken.add(i);
      devices.push({ name: request.name, ids: picked.map((i) => group.ids[i] as string) });
    }
    return { ok: true, devices };
  }

  private adjust(node: number, devices: readonly DeviceAssignment[], by: 1 | -1): void {
    const groups = this.byNode[node];
    if (groups === undefined) return;
    for (const d of devices) {
      const group = groups.get(d.name);
      if (group === undefined) continue;
      for (const id of d.ids) {
        const i = group.indexById.get(id);
        if (i !== undefined) group.holders[i] = Math.max(0, (group.holders[i] as number) + by);
      }
    }
  }
}
