/**
 * How a snapshot travels to a scheduler worker. Nodes go only when the
 * worker does not have that nodes array yet (the collector hands out the same
 * array until a node changes); allocations go as columns (typed arrays and
 * two string lists) rather than 100,000 small objects, which structured
 * cloning copies one by one.
 */
import type { NodeInfo } from "../../common/types.js";
import type { Allocation, ClusterSnapshot, PlacementResult, SchedulerOptions, TaskToPlace } from "../scheduler/index.js";

export interface EncodedAllocations {
  taskIds: string[];
  jobIds: string[];
  /** Position of each allocation's node in the nodes array. */
  nodes: Int32Array;
  /** cpu, memory, disk per allocation. */
  resources: Float64Array;
  priorities: Float64Array;
  /** [allocation position, its static ports] for the few that hold some. */
  ports: [number, number[]][];
}

export interface PlanRequest {
  id: number;
  /** Which nodes array `allocations` refers to; `nodes` is sent with it when the worker lacks it. */
  nodesKey: number;
  nodes?: NodeInfo[];
  allocations: EncodedAllocations;
  tasks: TaskToPlace[];
  opts: SchedulerOptions;
}

export type PlanReply = { id: number; result: PlacementResult } | { id: number; error: string };

/** Allocations on nodes outside `nodes` are left out: they hold nothing the scheduler could place on. */
export function encodeAllocations(nodes: readonly NodeInfo[], allocations: readonly Allocation[]): EncodedAllocations {
  const position = new Map<string, number>();
  nodes.forEach((n, i) => position.set(n.id, i));
  const kept: [Allocation, number][] = [];
  for (const a of allocations) {
    const at = position.get(a.nodeId);
    if (at !== undefined) kept.push([a, at]);
  }
  const out: EncodedAllocations = { taskIds: [], jobIds: [], nodes: new Int32Array(kept.length), resources: new Float64Array(kept.length * 3), priorities: new Float64Array(kept.length), ports: [] };
  kept.forEach(([a, at], k) => {
    out.taskIds.push(a.taskId);
    out.jobIds.push(a.jobId);
    out.nodes[k] = at;
    out.resources[k * 3] = a.resources.cpu;
    out.resources[k * 3 + 1] = a.resources.memory;
    out.resources[k * 3 + 2] = a.resources.disk;
    out.priorities[k] = a.priority;
    if (a.staticPorts.length > 0) out.ports.push([k, a.staticPorts]);
  });
  return out;
}

export function decodeSnapshot(nodes: readonly NodeInfo[], encoded: EncodedAllocations): ClusterSnapshot {
  const ports = new Map(encoded.ports);
  const allocations: Allocation[] = encoded.taskIds.map((taskId, k) => ({
    taskId,
    jobId: encoded.jobIds[k] as string,
    nodeId: (nodes[encoded.nodes[k] as number] as NodeInfo).id,
    resources: { cpu: encoded.resources[k * 3] as number, memory: encoded.resources[k * 3 + 1] as number, disk: encoded.resources[k * 3 + 2] as number },
    priority: encoded.priorities[k] as number,
    staticPorts: ports.get(k) ?? [],
  }));
  return { nodes, allocations };
}
