/**
 * Public shapes of the scheduler. The scheduler is a pure function of its
 * input: no I/O, no clock, no randomness except from `SchedulerOptions.seed`.
 */
import type { JobSpec, NodeInfo, Resources } from "../../common/types.js";

/** One task instance waiting for a machine. */
export interface TaskToPlace {
  taskId: string;
  jobId: string;
  spec: JobSpec;
  /** Digest of the task's package, when it has one; nodes caching it score higher. */
  packageDigest?: string;
}

/** A task already bound to a node (running, dispatched, or placed earlier). */
export interface Allocation {
  taskId: string;
  jobId: string;
  nodeId: string;
  resources: Resources;
  priority: number;
  staticPorts: number[];
}

export interface ClusterSnapshot {
  nodes: readonly NodeInfo[];
  allocations: Allocation[];
}

export interface SchedulerOptions {
  /**
   * How many feasible nodes are scored per task (Nomad's limit iterator).
   * Infeasible nodes do not count, so a fit is found whenever one exists.
   */
  sampleSize?: number;
  /** Seeds the rotating start offset of the node scan; same input + seed → same output. */
  seed?: number;
}

export interface Placement {
  taskId: string;
  nodeId: string;
  /** Final, normalized score: the mean of `scores`, in [-1, 1]. */
  score: number;
  /** Every scorer's value for the chosen node, by scorer name. */
  scores: Record<string, number>;
}

export interface Unplaced {
  taskId: string;
  /** Reason text → number of nodes rejected for that reason (first failing check per node). */
  reasons: Record<string, number>;
  /** e.g. "3 nodes: memory exhausted; 1 node: constraint os = linux failed" */
  summary: string;
  /** The largest cpu and the largest memory any single ready node could take now. */
  largestFit: { cpu: number; memory: number };
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
