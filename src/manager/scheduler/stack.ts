/**
 * The scheduler stack: every rule, in order. A node is rejected by the first
 * checker it fails (that is the reason it is counted under), and a feasible
 * node's score is the mean of every scorer that applies to the task, so final
 * scores of different nodes are comparable.
 *
 * To add a rule: write a Checker or Scorer in checkers/ or scorers/ and list it here.
 */
import type { Checker, ChainContext, NodeCheck, Scorer } from "./chain.js";
import { avoidedNodes } from "./checkers/avoided.js";
import { constraints } from "./checkers/constraints.js";
import { devices } from "./checkers/devices.js";
import { driver } from "./checkers/driver.js";
import { maxPerNode } from "./checkers/max-per-node.js";
import { nodeState } from "./checkers/node-state.js";
import { reclaimedResources } from "./checkers/reclaimed-resources.js";
import { resources } from "./checkers/resources.js";
import { staticPorts } from "./checkers/static-ports.js";
import { stickyRestart } from "./checkers/sticky.js";
import { FEASIBLE } from "./reasons.js";
import { binpack, spread } from "./scorers/fit.js";
import { fragmentation } from "./scorers/fragmentation.js";
import { jobAntiAffinity } from "./scorers/job-anti-affinity.js";
import { packageCached } from "./scorers/package-cached.js";
import { StaticFeasibility } from "./static-feasibility.js";
import type { TaskClass } from "./task-class.js";

/** Checkers with an index hint come first: the hint decides which nodes the rest ever see. */
export const CHECKERS: readonly Checker[] = [stickyRestart, nodeState, avoidedNodes, driver, constraints, resources, reclaimedResources, maxPerNode, staticPorts, devices];

export const SCORERS: readonly Scorer[] = [binpack, spread, fragmentation, jobAntiAffinity, packageCached];

/** The stack compiled for one task class: only the rules that apply to it. */
export class ClassChain {
  /** Names of the applicable scorers, parallel to the values `score` writes. */
  readonly scorerNames: string[] = [];
  readonly only: { nodes: readonly number[]; reason: number } | undefined;
  private readonly staticChecks: NodeCheck[] = [];
  private readonly dynamicChecks: NodeCheck[] = [];
  /** The dynamic checks preemption cannot satisfy (it can free resources and ports, nothing else). */
  private readonly unpreemptibleChecks: NodeCheck[] = [];
  private readonly scorers: ((node: number) => number)[] = [];
  /** The static checks' verdicts per node, shared with every class of the same static signature. */
  readonly staticVerdicts: StaticFeasibility;

  constructor(cls: TaskClass, ctx: ChainContext) {
    let only: ClassChain["only"];
    let signature: string | undefined = "";
    for (const checker of CHECKERS) {
      const compiled = checker.forClass(cls, ctx);
      if (compiled === undefined) continue;
      only ??= compiled.only;
      if (checker.static) {
        this.staticChecks.push(compiled.check);
        signature = signature === undefined || checker.signature === undefined ? undefined : `${signature}${checker.name}=${checker.signature(cls)}\u0000`;
      } else {
        this.dynamicChecks.push(compiled.check);
        if (!checker.preemptible) this.unpreemptibleChecks.push(compiled.check);
      }
    }
    this.only = only;
    this.staticVerdicts = sharedVerdicts(ctx, signature);
    for (const scorer of SCORERS) {
      const score = scorer.forClass(cls, ctx);
      if (score === undefined) continue;
      this.scorerNames.push(scorer.name);
      this.scorers.push(score);
    }
  }

  /** FEASIBLE or the first static checker's reason; memoized per node. */
  staticFailure(node: number): number {
    return this.staticVerdicts.verdict(node, this.staticChecks);
  }

  /** FEASIBLE or the first reason `node` cannot take one more instance now. */
  firstFailure(node: number): number {
    const fixed = this.staticFailure(node);
    if (fixed !== FEASIBLE) return fixed;
    return firstOf(this.dynamicChecks, node);
  }

  /** FEASIBLE or the first dynamic checker's reason (for a node whose static checks pass). */
  dynamicFailure(node: number): number {
    return firstOf(this.dynamicChecks, node);
  }

  /** FEASIBLE when evicting lower-priority work could make room on `node`, else the reason it cannot. */
  preemptionFailure(node: number): number {
    const fixed = this.staticFailure(node);
    if (fixed !== FEASIBLE) return fixed;
    return firstOf(this.unpreemptibleChecks, node);
  }

  /** Writes every scorer's value into `into` (parallel to `scorerNames`) and returns their mean. */
  score(node: number, into: Float64Array, at = 0): number {
    const scorers = this.scorers;
    let total = 0;
    for (let i = 0; i < scorers.length; i++) {
      const value = (scorers[i] as (node: number) => number)(node);
      into[at + i] = value;
      total += value;
    }
    return scorers.length === 0 ? 0 : total / scorers.length;
  }
}

function sharedVerdicts({ state }: ChainContext, signature: string | undefined): StaticFeasibility {
  if (signature === undefined) return new StaticFeasibility(state.size);
  const shared = state.index.staticVerdicts;
  let verdicts = shared.get(signature);
  if (verdicts === undefined) {
    verdicts = new StaticFeasibility(state.size);
    shared.set(signature, verdicts);
  }
  return verdicts;
}

function firstOf(checks: readonly NodeCheck[], node: number): number {
  for (let i = 0; i < checks.length; i++) {
    const result = (checks[i] as NodeCheck)(node);
    if (result !== FEASIBLE) return result;
  }
  return FEASIBLE;
}
