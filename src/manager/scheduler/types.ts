/**
 * Public shapes of the scheduler. The scheduler is a pure function of its
 * input: no I/O, no clock, no randomness except from `SchedulerOptions.seed`.
 */
import type { DeviceAssignment, JobSpec, NodeInfo, PlacementStrategy, Resources } from "../../common/types.js";
import type { SmallestChange } from "./smallest-change.js";

/** One task instance waiting for a machine. */
export interface TaskToPlace {
  taskId: string;
  jobId: string;
  spec: JobSpec;
  /** Digest of the task's package, when it has one; nodes caching it score higher. */
  packageDigest?: string;
  /** A restart in place: the task may only go back to this node (while it is ready). */
  stickyNode?: string;
  /** Nodes the task must not go to (it failed there too often). */
  avoidNodes?: readonly string[];
  /** A batch task that may use reclaimed capacity (reclaim.ts); the same for every instance of a job. */
  reclaimable?: boolean;
}

/**
 * A task already bound to a node (running, dispatched, placed earlier, or
 * waiting out its restart backoff there). The tasks being placed must not
 * appear among the snapshot's allocations.
 */
export interface Allocation {
  taskId: string;
  jobId: string;
  nodeId: string;
  resources: Resources;
  priority: number;
  staticPorts: number[];
  /** Device instances the task holds on the node (devices-state.ts). */
  devices?: DeviceAssignment[];
}

export interface ClusterSnapshot {
  nodes: readonly NodeInfo[];
  allocations: Allocation[];
  /** Per node id: cpu and memory prod tasks reserved but are estimated not to use (reclaim.ts). */
  reclaimable?: ReadonlyMap<string, { cpu: number; memory: number }>;
}

export interface SchedulerOptions {
  /**
   * How many feasible nodes are scored per task (Nomad's limit iterator).
   * Infeasible nodes do not count, so a fit is found whenever one exists.
   */
  sampleSize?: number;
  /** Seeds the rotating start offset of the node scan; same input + seed → same output. */
  seed?: number;
  /**
   * Also work out, per unplaceable class, the smallest change to its request
   * that would fit now (smallest-change.ts): a few extra scans of every node
   * per class, so dry runs and pages ask for it and placement rounds do not.
   */
  explain?: boolean;
  /** The strategy of jobs that name none (the cell's `manager.placementStrategy`); default binpack. */
  defaultStrategy?: PlacementStrategy;
}

export interface ScoredCandidate {
  nodeId: string;
  /** The mean of `scores`. */
  score: number;
  /** Every applicable scorer's value, by scorer name. */
  scores: Record<string, number>;
}

/** How one placement was decided (Nomad's AllocMetric). */
export interface PlacementMetrics {
  /** Nodes the scan looked at (it stops after `sampleSize` feasible ones). */
  nodesEvaluated: number;
  /** Nodes rejected by a rule, by checker name, then by reason. */
  nodesFiltered: Record<string, Record<string, number>>;
  /** Nodes that passed every rule but had run out of something, by dimension (cpu, memory, disk, port 8080). */
  nodesExhausted: Record<string, number>;
  /** The best-scoring feasible nodes, best first (at most TOP_CANDIDATES). */
  candidates: ScoredCandidate[];
}

export interface Placement {
  taskId: string;
  nodeId: string;
  /** Final, normalized score: the mean of `scores`, in [-1, 1]. */
  score: number;
  /** Every scorer's value for the chosen node, by scorer name. */
  scores: Record<string, number>;
  metrics: PlacementMetrics;
  /** The placement uses reclaimed capacity: without it the task would not fit there. */
  reclaimed?: true;
  /** The device instances chosen for the task on that node, when it asks for devices. */
  devices?: DeviceAssignment[];
}

export interface Unplaced {
  taskId: string;
  /** Reason text → number of nodes rejected for that reason (first failing check per node). */
  reasons: Record<string, number>;
  /** e.g. "3 nodes: memory exhausted; 1 node: constraint os = linux failed" */
  summary: string;
  /** The largest cpu and the largest memory any single ready node could take now. */
  largestFit: { cpu: number; memory: number };
  metrics: PlacementMetrics;
  /**
   * Set when the task failed on every ready node (all are avoided): waiting
   * for a new machine could take forever, so the caller decides what now.
   */
  everyUsableNodeAvoided?: true;
  /** With `explain`: the smallest changes to the request that would fit now, smallest first. */
  smallestChange?: SmallestChange[];
}

export interface Preemption {
  victimTaskId: string;
  forTaskId: string;
  nodeId: string;
}

export interface PlacementResult {
  placements: Placement[];
  unplaced: Unplaced[];
  preemptions: Preemption[];
}

export const DEFAULT_SAMPLE_SIZE = 64;

/** How many candidates a placement's metrics list. */
export const TOP_CANDIDATES = 3;
