/**
 * A scheduler worker: plans placements with the pure scheduler on each
 * snapshot it is sent and answers the result. It keeps the last nodes array
 * it was sent, so an unchanged cell costs only the allocations per request.
 */
import { parentPort } from "node:worker_threads";
import type { NodeInfo } from "../../common/types.js";
import { placeTasks } from "../scheduler/index.js";
import { decodeSnapshot, type PlanReply, type PlanRequest } from "./snapshot.js";

let nodes: { key: number; list: NodeInfo[] } | undefined;

function plan(req: PlanRequest): PlanReply {
  try {
    if (req.nodes !== undefined) nodes = { key: req.nodesKey, list: req.nodes };
    if (nodes?.key !== req.nodesKey) return { id: req.id, error: `worker lacks nodes array ${req.nodesKey}` };
    return { id: req.id, result: placeTasks(req.tasks, decodeSnapshot(nodes.list, req.allocations), req.opts) };
  } catch (e) {
    return { id: req.id, error: (e as Error).message };
  }
}

parentPort?.on("message", (req: PlanRequest) => parentPort?.postMessage(plan(req)));
