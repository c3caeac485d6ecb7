/**
 * The feasibility chain and the bounded candidate scan (Nomad's limit
 * iterator): nodes are visited from a rotating cursor; infeasible nodes are
 * skipped (their reason counted) and scanning stops after `sampleSize`
 * feasible candidates have been scored, or after every node was visited.
 */
import type { ClusterState } from "./cluster-state.js";
import { RESOURCE_EPSILON } from "./feasibility.js";
import { FEASIBLE, type ReasonTable } from "./reasons.js";
import { nodeScore } from "./score.js";
import type { TaskClass } from "./task-class.js";

/** FEASIBLE or the first reason `node` cannot take one more instance of `cls` now. */
export function firstFailure(cls: TaskClass, state: ClusterState, reasons: ReasonTable, node: number): number {
  const fixed = cls.feasibility.check(node);
  if (fixed !== FEASIBLE) return fixed;
  if ((state.freeCpu[node] as number) + RESOURCE_EPSILON < cls.cpu) return reasons.cpuExhausted;
  if ((state.freeMemory[node] as number) + RESOURCE_EPSILON < cls.memory) return reasons.memoryExhausted;
  if ((state.freeDisk[node] as number) + RESOURCE_EPSILON < cls.disk) return reasons.diskExhausted;
  if (cls.maxPerNode !== Infinity && (cls.jobCounts.get(node) ?? 0) >= cls.maxPerNode) return cls.maxPerNodeReason;
  const ports = cls.staticPorts;
  for (let p = 0; p < ports.length; p++) {
    if (state.portHolder(node, ports[p] as number) !== undefined) return cls.portReasons[p] as number;
  }
  return FEASIBLE;
}

export class NodeScanner {
  /** Where the next scan starts; advances past every node a scan visits. */
  cursor: number;
  /** Result of the last scan: the best node, or -1 when no node is feasible. */
  bestNode = -1;
  bestScore = -Infinity;
  /** After a scan that found nothing: per reason code, how many nodes failed with it. */
  reasonCounts: Int32Array = new Int32Array(16);

  constructor(
    private readonly state: ClusterState,
    private readonly reasons: ReasonTable,
    private readonly sampleSize: number,
    startOffset: number,
  ) {
    this.cursor = startOffset;
  }

  scan(cls: TaskClass): void {
    const { state, reasons } = this;
    const n = state.size;
    if (this.reasonCounts.length < reasons.size) this.reasonCounts = new Int32Array(reasons.size * 2);
    const counts = this.reasonCounts;
    counts.fill(0);
    const ids = state.nodes;
    let best = -1;
    let bestScore = -Infinity;
    let feasibleSeen = 0;
    let node = this.cursor;
    for (let visited = 0; visited < n; visited++) {
      const current = node;
      node = node + 1 === n ? 0 : node + 1;
      const failure = firstFailure(cls, state, reasons, current);
      if (failure !== FEASIBLE) {
        counts[failure]++;
        continue;
      }
      const score = nodeScore(cls, state, current);
      // Ties go to the smaller node id so the result does not depend on scan order.
      if (score > bestScore || (score === bestScore && (ids[current]?.id ?? "") < (ids[best]?.id ?? ""))) {
        best = current;
        bestScore = score;
      }
      if (++feasibleSeen >= this.sampleSize) break;
    }
    this.cursor = node;
    this.bestNode = best;
    this.bestScore = bestScore;
  }
}
