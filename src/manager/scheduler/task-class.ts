/**
 * Equivalence classes: the instances of one job with the same spec (and
 * package) are interchangeable, so they share one compiled feasibility memo,
 * one set of reason codes and, when they cannot be placed, one failure record.
 */
import type { JobSpec, NodeInfo } from "../../common/types.js";
import type { ClusterState } from "./cluster-state.js";
import { RegexpCache, StaticFeasibility } from "./feasibility.js";
import type { ReasonTable } from "./reasons.js";
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
  /** Reason code for "static port N in use", parallel to `staticPorts`. */
  readonly portReasons: number[];
  /** Infinity when the job sets no spread limit. */
  readonly maxPerNode: number;
  readonly maxPerNodeReason: number;
  readonly spread: boolean;
  readonly instances: number;
  readonly packageDigest: string | undefined;
  readonly feasibility: StaticFeasibility;
  /** Node index → instances of this job already there (shared by all classes of the job). */
  readonly jobCounts: Map<number, number>;
  /** Per node: 0 unknown, 1 package cached, 2 not cached. Shared by classes with the same digest. */
  readonly packageCached: Uint8Array | undefined;

  /** `releaseEpoch` of the cluster when this class was last found unplaceable; -1 if never. */
  exhaustedAtEpoch = -1;
  failure: ClassFailure | undefined;

  constructor(task: TaskToPlace, state: ClusterState, reasons: ReasonTable, regexps: RegexpCache, packageCached: Uint8Array | undefined) {
    const spec = task.spec;
    this.jobId = task.jobId;
    this.spec = spec;
    this.priority = spec.priority;
    this.cpu = spec.resources.cpu;
    this.memory = spec.resources.memory;
    this.disk = spec.resources.disk;
    this.staticPorts = [...new Set(spec.ports.flatMap((p) => (p.static === undefined ? [] : [p.static])))];
    this.portReasons = this.staticPorts.map((port) => reasons.code(`static port ${port} in use`));
    this.maxPerNode = spec.placement.maxPerNode ?? Infinity;
    this.maxPerNodeReason = reasons.code(`job spread: ${spec.placement.maxPerNode ?? "unlimited"} per node reached`);
    this.spread = spec.placement.strategy === "spread";
    this.instances = Math.max(1, spec.instances);
    this.packageDigest = task.packageDigest;
    this.feasibility = new StaticFeasibility(state, spec, reasons, regexps);
    this.jobCounts = state.jobCountsOf(task.jobId);
    this.packageCached = packageCached;
  }
}

export class TaskClassRegistry {
  private readonly byKey = new Map<string, TaskClass>();
  /** Spec object → canonical text; most callers pass one spec object per job. */
  private readonly specText = new Map<JobSpec, string>();
  private readonly packageMemos = new Map<string, Uint8Array>();
  private readonly regexps = new RegexpCache();

  constructor(
    private readonly state: ClusterState,
    private readonly reasons: ReasonTable,
  ) {}

  classOf(task: TaskToPlace): TaskClass {
    let text = this.specText.get(task.spec);
    if (text === undefined) {
      text = JSON.stringify(task.spec);
      this.specText.set(task.spec, text);
    }
    const key = `${task.jobId}\u0000${task.packageDigest ?? ""}\u0000${text}`;
    let cls = this.byKey.get(key);
    if (cls === undefined) {
      cls = new TaskClass(task, this.state, this.reasons, this.regexps, this.packageMemo(task.packageDigest));
      this.byKey.set(key, cls);
    }
    return cls;
  }

  private packageMemo(digest: string | undefined): Uint8Array | undefined {
    if (digest === undefined) return undefined;
    let memo = this.packageMemos.get(digest);
    if (memo === undefined) {
      memo = new Uint8Array(this.state.size);
      this.packageMemos.set(digest, memo);
    }
    return memo;
  }
}

export function hasCachedPackage(cls: TaskClass, nodes: readonly NodeInfo[], node: number): boolean {
  const memo = cls.packageCached;
  if (memo === undefined || cls.packageDigest === undefined) return false;
  let known = memo[node] as number;
  if (known === 0) {
    known = (nodes[node] as NodeInfo).cachedPackages.includes(cls.packageDigest) ? 1 : 2;
    memo[node] = known;
  }
  return known === 1;
}
