/**
 * The shapes of the scheduler's chain (Nomad's feasible.go and rank.go): a
 * task class runs through every checker that applies to it, in the order of
 * `stack.ts`, and every candidate that passes is ranked by every scorer that
 * applies. A rule is one `Checker` (where a task may go) or one `Scorer` (where
 * it would rather go) in its own file, plus one line in `stack.ts`.
 */
import type { PlacementStrategy } from "../../common/types.js";
import type { ClusterState } from "./cluster-state.js";
import type { RegexpCache } from "./checkers/constraints.js";
import type { ReasonTable } from "./reasons.js";
import type { TaskClass } from "./task-class.js";
import type { TaskToPlace } from "./types.js";

/** What a checker or scorer may use while compiling itself for one task class. */
export interface ChainContext {
  readonly state: ClusterState;
  readonly reasons: ReasonTable;
  readonly regexps: RegexpCache;
  /** Every task of the call (the fragmentation scorer's view of the work waiting). */
  readonly pending: readonly TaskToPlace[];
  /** The strategy of jobs that name none. */
  readonly defaultStrategy: PlacementStrategy;
}

/** FEASIBLE (0), or the code of the reason `node` cannot take one more instance. */
export type NodeCheck = (node: number) => number;

export interface CompiledCheck {
  check: NodeCheck;
  /**
   * Index hint: the only nodes that can pass. The scan visits just these and
   * counts every other node under `reason`, without calling any checker on it.
   */
  only?: { nodes: readonly number[]; reason: number };
}

export interface Checker {
  readonly name: string;
  /**
   * The answer depends only on the node and the task class, never on what
   * this call has placed: it is computed once per node and class and memoized
   * (and could be served from an index of machines by class).
   */
  readonly static: boolean;
  /** Evicting lower-priority allocations can make the node pass (resources, ports): preemption skips it. */
  readonly preemptible: boolean;
  /**
   * For a static checker: everything of the class its check reads, as text
   * ("" when it reads nothing). Classes whose static checkers all give equal
   * signatures share one set of verdicts per node, kept between calls. A
   * static checker without it keeps its verdicts to the class it checks.
   */
  signature?(cls: TaskClass): string;
  /** The check for one class, or undefined when this rule does not concern the class. */
  forClass(cls: TaskClass, ctx: ChainContext): CompiledCheck | undefined;
}

export interface Scorer {
  readonly name: string;
  /** The score of one more instance of the class on a node, in [-1, 1]; undefined when it does not apply. */
  forClass(cls: TaskClass, ctx: ChainContext): ((node: number) => number) | undefined;
}
