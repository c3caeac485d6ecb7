/**
 * The scheduler: a pure function from pending tasks and a cluster snapshot to
 * placements, preemptions and explained refusals.
 */
export { placeTasks } from "./place.js";
export { DEFAULT_SAMPLE_SIZE } from "./types.js";
export type { Allocation, ClusterSnapshot, Placement, PlacementResult, Preemption, SchedulerOptions, TaskToPlace, Unplaced } from "./types.js";
export { SCORER_BINPACK, SCORER_JOB_ANTI_AFFINITY, SCORER_PACKAGE_CACHED, SCORER_SPREAD } from "./score.js";
