/**
 * The plan committer (Omega's optimistic concurrency): a scheduler plans on a
 * snapshot of the cell taken at some per-node generations; at commit, each
 * placement on a node whose generation is unchanged is accepted as planned,
 * and one on a node that changed since the snapshot is accepted only if it
 * still fits what is free there now (resources and static ports). A
 * placement that needed a preemption is accepted only on an unchanged node:
 * its victims were chosen against the snapshot. Rejected placements are
 * conflicts; their tasks are planned again on a newer snapshot.
 *
 * `judgePlan` is a pure function of (ledger, plan); `commitPlan` applies a
 * verdict to the ledger.
 */
import { RESOURCE_EPSILON } from "../scheduler/checkers/resources.js";
import type { Allocation, Preemption } from "../scheduler/index.js";
import type { CellLedger } from "./ledger.js";

export interface Plan {
  /** The per-node generations of the snapshot the plan was made on. */
  basis: Uint32Array;
  /** The allocations the plan makes, in the order the scheduler made them. */
  placements: Allocation[];
  preemptions: Preemption[];
}

export interface Rejection {
  taskId: string;
  why: string;
}

export interface Verdict {
  /** Indexes into `plan.placements`. */
  accepted: number[];
  rejected: Rejection[];
}

type LedgerView = Pick<CellLedger, "indexOf" | "portHeld" | "generation" | "freeCpu" | "freeMemory" | "freeDisk">;

export function judgePlan(ledger: LedgerView, plan: Plan): Verdict {
  const verdict: Verdict = { accepted: [], rejected: [] };
  const preempting = new Set(plan.preemptions.map((p) => p.forTaskId));
  // What this plan's accepted placements take, per changed node (unchanged nodes are the plan's own accounting).
  const taken = new Map<number, { cpu: number; memory: number; disk: number; ports: Set<number> }>();
  plan.placements.forEach((p, at) => {
    const node = ledger.indexOf(p.nodeId);
    if (node === undefined) {
      verdict.rejected.push({ taskId: p.taskId, why: `node ${p.nodeId} left the cell` });
      return;
    }
    if (ledger.generation[node] === plan.basis[node]) {
      verdict.accepted.push(at);
      return;
    }
    if (preempting.has(p.taskId)) {
      verdict.rejected.push({ taskId: p.taskId, why: `node ${p.nodeId} changed since the snapshot its preemption was planned on` });
      return;
    }
    let use = taken.get(node);
    if (use === undefined) taken.set(node, (use = { cpu: 0, memory: 0, disk: 0, ports: new Set() }));
    const short =
      (ledger.freeCpu[node] as number) - use.cpu < p.resources.cpu - RESOURCE_EPSILON
        ? "cpu"
        : (ledger.freeMemory[node] as number) - use.memory < p.resources.memory - RESOURCE_EPSILON
          ? "memory"
          : (ledger.freeDisk[node] as number) - use.disk < p.resources.disk - RESOURCE_EPSILON
            ? "disk"
            : p.staticPorts.find((port) => ledger.portHeld(node, port) || use.ports.has(port)) !== undefined
              ? "static port"
              : undefined;
    if (short !== undefined) {
      verdict.rejected.push({ taskId: p.taskId, why: `node ${p.nodeId} changed since the snapshot: ${short} no longer fits` });
      return;
    }
    use.cpu += p.resources.cpu;
    use.memory += p.resources.memory;
    use.disk += p.resources.disk;
    for (const port of p.staticPorts) use.ports.add(port);
    verdict.accepted.push(at);
  });
  return verdict;
}

/** Applies `verdict` to the ledger: the accepted placements' victims leave, the accepted placements are bound. */
export function commitPlan(ledger: CellLedger, plan: Plan, verdict: Verdict): Allocation[] {
  const accepted = verdict.accepted.map((at) => plan.placements[at] as Allocation);
  const placedIds = new Set(accepted.map((a) => a.taskId));
  for (const v of plan.preemptions) if (placedIds.has(v.forTaskId)) ledger.release(v.victimTaskId);
  for (const alloc of accepted) ledger.bind(alloc);
  return accepted;
}
