/**
 * The bounded candidate scan (Nomad's limit iterator): nodes are visited from
 * a rotating cursor (or only the nodes of the class's index hint); each runs
 * through the class's chain, rejected ones are counted under their reason, and
 * scanning stops after `sampleSize` feasible candidates have been scored, or
 * after every node was visited. The best TOP_CANDIDATES are kept with their
 * per-scorer values, which become the placement's metrics.
 *
 * Once the class's static verdicts cover every node, the scan walks only the
 * statically feasible nodes (static-feasibility.ts) and adds the nodes it
 * passed over to their reasons' counts: the same nodes, order, choice and
 * counts as visiting each.
 */
import type { ClusterState } from "./cluster-state.js";
import { FEASIBLE, type ReasonTable } from "./reasons.js";
import type { ClassChain } from "./stack.js";
import type { StaticFeasibility } from "./static-feasibility.js";
import type { TaskClass } from "./task-class.js";
import { TOP_CANDIDATES } from "./types.js";

export class NodeScanner {
  /** Where the next scan starts; advances past every node a scan visits. */
  cursor: number;
  /** Per reason code, how many nodes the last scan rejected with it. */
  reasonCounts: Int32Array = new Int32Array(16);
  nodesEvaluated = 0;
  /** The last scan's best nodes, best first (-1 past `topCount`), their scores and per-scorer values. */
  readonly topNodes = new Int32Array(TOP_CANDIDATES);
  readonly topScores = new Float64Array(TOP_CANDIDATES);
  topValues = new Float64Array(TOP_CANDIDATES * 4);
  topCount = 0;
  private values = new Float64Array(4);

  constructor(
    private readonly state: ClusterState,
    private readonly reasons: ReasonTable,
    private readonly sampleSize: number,
    startOffset: number,
  ) {
    this.cursor = startOffset;
  }

  /** The best node of the last scan, or -1 when none was feasible. */
  get bestNode(): number {
    return this.topCount > 0 ? (this.topNodes[0] as number) : -1;
  }

  get bestScore(): number {
    return this.topScores[0] as number;
  }

  scan(cls: TaskClass): void {
    const { state, reasons } = this;
    const chain = cls.chain;
    const width = chain.scorerNames.length;
    if (this.values.length < width) {
      this.values = new Float64Array(width);
      this.topValues = new Float64Array(width * TOP_CANDIDATES);
    }
    if (this.reasonCounts.length < reasons.size) this.reasonCounts = new Int32Array(reasons.size * 2);
    const counts = this.reasonCounts;
    counts.fill(0);
    this.topCount = 0;
    const only = chain.only;
    if (only === undefined && chain.staticVerdicts.feasible !== undefined) {
      this.scanFeasible(chain, chain.staticVerdicts, chain.staticVerdicts.feasible, width);
      return;
    }
    let feasibleSeen = 0;
    const n = only === undefined ? state.size : only.nodes.length;
    if (only !== undefined) counts[only.reason] = state.size - n;
    let node = this.cursor;
    let visited = 0;
    while (visited < n) {
      let current: number;
      if (only === undefined) {
        current = node;
        node = node + 1 === n ? 0 : node + 1;
      } else current = only.nodes[visited] as number;
      visited++;
      const failure = chain.firstFailure(current);
      if (failure !== FEASIBLE) {
        counts[failure]++;
        continue;
      }
      this.consider(current, chain.score(current, this.values), width);
      if (++feasibleSeen >= this.sampleSize) break;
    }
    if (only === undefined) this.cursor = node;
    this.nodesEvaluated = visited;
  }

  /** The scan over the statically feasible nodes only, from the cursor on, wrapping. */
  private scanFeasible(chain: ClassChain, verdicts: StaticFeasibility, feasible: Int32Array, width: number): void {
    const counts = this.reasonCounts;
    const n = this.state.size;
    const m = feasible.length;
    const start = this.cursor;
    let at = verdicts.firstAtOrAfter(start);
    if (at === m) at = 0;
    let feasibleSeen = 0;
    let last = -1;
    for (let seen = 0; seen < m; seen++) {
      const node = feasible[at] as number;
      at = at + 1 === m ? 0 : at + 1;
      const failure = chain.dynamicFailure(node);
      if (failure !== FEASIBLE) {
        counts[failure] = (counts[failure] as number) + 1;
        continue;
      }
      this.consider(node, chain.score(node, this.values), width);
      if (++feasibleSeen >= this.sampleSize) {
        last = node;
        break;
      }
    }
    // Without a stop the whole ring was visited and the cursor is back at `start`.
    const visited = last < 0 ? n : ((last - start + n) % n) + 1;
    if (last >= 0) this.cursor = last + 1 === n ? 0 : last + 1;
    verdicts.countRejected(counts, start, visited);
    this.nodesEvaluated = visited;
  }

  /** Keeps `node` among the top candidates when it scores high enough; ties go to the smaller node id. */
  private consider(node: number, score: number, width: number): void {
    const { topNodes, topScores, topValues } = this;
    const nodes = this.state.nodes;
    let at = this.topCount;
    while (at > 0) {
      const other = topNodes[at - 1] as number;
      const otherScore = topScores[at - 1] as number;
      if (score > otherScore || (score === otherScore && (nodes[node]?.id ?? "") < (nodes[other]?.id ?? ""))) at--;
      else break;
    }
    if (at >= TOP_CANDIDATES) return;
    const last = Math.min(this.topCount, TOP_CANDIDATES - 1);
    for (let k = last; k > at; k--) {
      topNodes[k] = topNodes[k - 1] as number;
      topScores[k] = topScores[k - 1] as number;
      topValues.copyWithin(k * width, (k - 1) * width, k * width);
    }
    topNodes[at] = node;
    topScores[at] = score;
    topValues.set(this.values.subarray(0, width), at * width);
    if (this.topCount < TOP_CANDIDATES) this.topCount++;
  }
}
