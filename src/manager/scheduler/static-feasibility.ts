/**
 * The static checks' verdict on every node for one static signature, kept in
 * the cluster index between calls. A static check depends only on the node
 * and on the part of the class its checker names in `signature` (constraints,
 * driver, avoided nodes, sticky node), so every class with the same signature
 * (instances of other jobs with the same constraints, later calls for the same
 * job) reads the verdicts the first one worked out.
 *
 * Once every node has a verdict, it also lists the statically feasible nodes
 * in node order with, per rejecting reason, how many nodes before each
 * position it rejects: a scan walks the feasible list only and still counts
 * every node it passes under its reason, exactly as visiting each would.
 */
import type { NodeCheck } from "./chain.js";
import { FEASIBLE } from "./reasons.js";

export class StaticFeasibility {
  /** Per node: 0 = not yet checked, otherwise the first failing reason + 1 (FEASIBLE + 1 = 1). */
  private readonly verdicts: Uint16Array;
  private known = 0;
  /** Statically feasible nodes, ascending; set once every node is known. */
  feasible: Int32Array | undefined;
  /** The reasons that reject some node, and per reason its count over nodes [0, i) at [i]. */
  rejectingReasons: number[] = [];
  rejectedBefore: Int32Array[] = [];

  constructor(private readonly size: number) {
    this.verdicts = new Uint16Array(size);
  }

  /** FEASIBLE or the first of `checks` that rejects `node`; memoized. */
  verdict(node: number, checks: readonly NodeCheck[]): number {
    const known = this.verdicts[node] as number;
    if (known !== 0) return known - 1;
    let result = FEASIBLE;
    for (let i = 0; i < checks.length && result === FEASIBLE; i++) result = (checks[i] as NodeCheck)(node);
    this.verdicts[node] = result + 1;
    if (++this.known === this.size) this.buildIndex();
    return result;
  }

  /** Adds to `counts` the nodes rejected statically among the `visited` nodes from `start` on, wrapping. */
  countRejected(counts: Int32Array, start: number, visited: number): void {
    const n = this.size;
    const end = start + visited;
    for (let r = 0; r < this.rejectingReasons.length; r++) {
      const before = this.rejectedBefore[r] as Int32Array;
      const inRange = end <= n ? (before[end] as number) - (before[start] as number) : (before[n] as number) - (before[start] as number) + (before[end - n] as number);
      const code = this.rejectingReasons[r] as number;
      counts[code] = (counts[code] as number) + inRange;
    }
  }

  /** Position in `feasible` of the first feasible node at or after `node` (feasible.length when none). */
  firstAtOrAfter(node: number): number {
    const feasible = this.feasible as Int32Array;
    let lo = 0;
    let hi = feasible.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((feasible[mid] as number) < node) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private buildIndex(): void {
    const n = this.size;
    const verdicts = this.verdicts;
    let feasibleCount = 0;
    const slot = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const reason = (verdicts[i] as number) - 1;
      if (reason === FEASIBLE) feasibleCount++;
      else if (!slot.has(reason)) {
        slot.set(reason, this.rejectingReasons.length);
        this.rejectingReasons.push(reason);
        this.rejectedBefore.push(new Int32Array(n + 1));
      }
    }
    const feasible = new Int32Array(feasibleCount);
    let f = 0;
    const running = new Int32Array(this.rejectingReasons.length);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < running.length; r++) (this.rejectedBefore[r] as Int32Array)[i] = running[r] as number;
      const reason = (verdicts[i] as number) - 1;
      if (reason === FEASIBLE) feasible[f++] = i;
      else {
        const r = slot.get(reason) as number;
        running[r] = (running[r] as number) + 1;
      }
    }
    for (let r = 0; r < running.length; r++) (this.rejectedBefore[r] as Int32Array)[n] = running[r] as number;
    this.feasible = feasible;
  }
}
