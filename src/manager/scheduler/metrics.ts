/**
 * Turns a scan's counters into the placement's metrics: nodes evaluated,
 * nodes filtered per checker and reason, nodes exhausted per dimension, and
 * the top candidates with each scorer's value.
 */
import type { ClusterState } from "./cluster-state.js";
import type { ReasonTable } from "./reasons.js";
import type { NodeScanner } from "./scan.js";
import type { ClassChain } from "./stack.js";
import type { PlacementMetrics, ScoredCandidate } from "./types.js";

export function scoresByName(chain: ClassChain, values: Float64Array, at: number): Record<string, number> {
  const scores: Record<string, number> = {};
  const names = chain.scorerNames;
  for (let i = 0; i < names.length; i++) scores[names[i] as string] = values[at + i] as number;
  return scores;
}

export function metricsOf(scanner: NodeScanner, chain: ClassChain, state: ClusterState, reasons: ReasonTable): PlacementMetrics {
  const nodesFiltered: PlacementMetrics["nodesFiltered"] = {};
  const nodesExhausted: PlacementMetrics["nodesExhausted"] = {};
  const counts = scanner.reasonCounts;
  const codes = reasons.inCall;
  for (let k = 0; k < codes.length; k++) {
    const code = codes[k] as number;
    const count = counts[code] ?? 0;
    if (count === 0) continue;
    const origin = reasons.origin(code);
    if (origin.dimension !== undefined) nodesExhausted[origin.dimension] = (nodesExhausted[origin.dimension] ?? 0) + count;
    else (nodesFiltered[origin.checker] ??= {})[reasons.text(code)] = count;
  }
  const width = chain.scorerNames.length;
  const candidates: ScoredCandidate[] = [];
  for (let k = 0; k < scanner.topCount; k++) {
    candidates.push({ nodeId: state.nodes[scanner.topNodes[k] as number]?.id ?? "", score: scanner.topScores[k] as number, scores: scoresByName(chain, scanner.topValues, k * width) });
  }
  return { nodesEvaluated: scanner.nodesEvaluated, nodesFiltered, nodesExhausted, candidates };
}

export function copyMetrics(m: PlacementMetrics): PlacementMetrics {
  return {
    nodesEvaluated: m.nodesEvaluated,
    nodesFiltered: Object.fromEntries(Object.entries(m.nodesFiltered).map(([checker, reasons]) => [checker, { ...reasons }])),
    nodesExhausted: { ...m.nodesExhausted },
    candidates: m.candidates.map((c) => ({ ...c, scores: { ...c.scores } })),
  };
}

/** One line for people: "4 nodes evaluated; filtered: constraints 2, node-state 1; exhausted: cpu 1, port 8080 1". */
export function describeMetrics(m: PlacementMetrics): string {
  const filtered = Object.entries(m.nodesFiltered).map(([checker, reasons]) => `${checker} ${Object.values(reasons).reduce((a, b) => a + b, 0)}`);
  const exhausted = Object.entries(m.nodesExhausted).map(([dimension, count]) => `${dimension} ${count}`);
  const parts = [`${m.nodesEvaluated} ${m.nodesEvaluated === 1 ? "node" : "nodes"} evaluated`];
  if (filtered.length > 0) parts.push(`filtered: ${filtered.join(", ")}`);
  if (exhausted.length > 0) parts.push(`exhausted: ${exhausted.join(", ")}`);
  return parts.join("; ");
}
