/**
 * Equivalence classes: the instances of one job with the same spec, package,
 * sticky node and avoided nodes are interchangeable, so they share one
 * compiled chain (with its static-check memo), one set of reason codes and,
 * when they cannot be placed, one failure record.
 */
import type { JobSpec, PlacementStrategy } from "../../common/types.js";
import type { ChainContext } from "./chain.js";
import { RegexpCache } from "./checkers/constraints.js";
import type { ClusterState } from "./cluster-state.js";
import type { ReasonTable } from "./reasons.js";
import { ClassChain } from "./stack.js";
import type { TaskToPlace, Unplaced } from "./types.js";

export type ClassFailure = Omit<Unplaced, "taskId">;

export class TaskClass {
  readonly jobId: string;
  readonly spec: JobSpec;
  readonly priority: number;
  readonly cpu: number;
  readonly memory: number;
  readonly disk: number;
  readonly staticPorts: number[];
  /** Infinity when the job sets no spread limit. */
  readonly maxPerNode: number;
  /** The job's placement strategy, or the cell's default when it names none. */
  readonly strategy: PlacementStrategy;
  readonly spread: boolean;
  readonly instances: number;
  readonly packageDigest: string | undefined;
  /** The node a restart in place returns to, when the task has one. */
  readonly stickyNode: string | undefined;
  /** Nodes the task failed on too often. */
  readonly avoidNodes: readonly string[];
  /** May use reclaimed capacity (reclaim.ts). */
  readonly reclaimable: boolean;
  /** The stack's rules that apply to this class, compiled. */
  readonly chain: ClassChain;
  /** Node index → instances of this job already there (shared by all classes of the job). */
  readonly jobCounts: Map<number, number>;
  /** Per node: 1 when it caches the package, else 0 (from the cluster index, shared). */
  readonly packageCached: Uint8Array | undefined;

  /** `releaseEpoch` of the cluster when this class was last found unplaceable; -1 if never. */
  exhaustedAtEpoch = -1;
  failure: ClassFailure | undefined;

  constructor(task: TaskToPlace, ctx: ChainContext, packageCached: Uint8Array | undefined) {
    const spec = task.spec;
    this.jobId = task.jobId;
    this.spec = spec;
    this.priority = spec.priority;
    this.cpu = spec.resources.cpu;
    this.memory = spec.resources.memory;
    this.disk = spec.resources.disk;
    this.staticPorts = [...new Set(spec.ports.flatMap((p) => (p.static === undefined ? [] : [p.static])))];
    this.maxPerNode = spec.placement.maxPerNode ?? Infinity;
    this.strategy = spec.placement.strategy ?? ctx.defaultStrategy;
    this.spread = this.strategy === "spread";
    this.instances = Math.max(1, spec.instances);
    this.packageDigest = task.packageDigest;
    this.stickyNode = task.stickyNode;
    this.avoidNodes = task.avoidNodes ?? [];
    this.reclaimable = task.reclaimable === true;
    this.jobCounts = ctx.state.jobCountsOf(task.jobId);
    this.packageCached = packageCached;
    this.chain = new ClassChain(this, ctx);
  }
}

/** Same job, spec object, package and no sticky or avoided nodes: the same class key without building it. */
function sameClassKey(a: TaskToPlace, b: TaskToPlace): boolean {
  return a.spec === b.spec && a.jobId === b.jobId && a.packageDigest === b.packageDigest && a.stickyNode === undefined && b.stickyNode === undefined && !a.avoidNodes?.length && !b.avoidNodes?.length;
}

export class TaskClassRegistry {
  private readonly byKey = new Map<string, TaskClass>();
  /** Spec object → canonical text; most callers pass one spec object per job. */
  private readonly specText = new Map<JobSpec, string>();
  private readonly ctx: ChainContext;

  constructor(
    private readonly state: ClusterState,
    reasons: ReasonTable,
    opts: { pending?: readonly TaskToPlace[]; defaultStrategy?: PlacementStrategy } = {},
  ) {
    this.ctx = { state, reasons, regexps: new RegexpCache(), pending: opts.pending ?? [], defaultStrategy: opts.defaultStrategy ?? "binpack" };
  }

  /** The last task looked up and its class: instances of a job come in a row. */
  private last: { task: TaskToPlace; cls: TaskClass } | undefined;

  classOf(task: TaskToPlace): TaskClass {
    const last = this.last;
    if (last !== undefined && sameClassKey(last.task, task)) return last.cls;
    const cls = this.lookUp(task);
    this.last = { task, cls };
    return cls;
  }

  private lookUp(task: TaskToPlace): TaskClass {
    let text = this.specText.get(task.spec);
    if (text === undefined) {
      text = JSON.stringify(task.spec);
      this.specText.set(task.spec, text);
    }
    const key = `${task.jobId}\u0000${task.packageDigest ?? ""}\u0000${task.stickyNode ?? ""}\u0000${task.avoidNodes?.join(",") ?? ""}\u0000${text}`;
    let cls = this.byKey.get(key);
    if (cls === undefined) {
      cls = new TaskClass(task, this.ctx, this.packageMemo(task.packageDigest));
      this.byKey.set(key, cls);
    }
    return cls;
  }

  /** A one-off class for a variant of `task`'s spec (what-if questions); not registered. */
  variant(task: TaskToPlace, spec: JobSpec): TaskClass {
    return new TaskClass({ ...task, spec }, this.ctx, undefined);
  }

  private packageMemo(digest: string | undefined): Uint8Array | undefined {
    return digest === undefined ? undefined : this.state.index.packageHoldersOf(digest);
  }
}
