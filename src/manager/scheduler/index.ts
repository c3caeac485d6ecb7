/**
 * The scheduler: a pure function from pending tasks and a cluster snapshot to
 * placements, preemptions and explained refusals. No I/O, no clock; the only
 * randomness is the seeded start offset of the node scan.
 *
 * Decisions worth knowing when reading results:
 * - Each rejected node is counted once, under the first check it fails, in
 *   the order of `stack.ts`: sticky restart, node state, avoided nodes,
 *   driver, constraints (in spec order), cpu, memory, disk, job spread limit
 *   (maxPerNode), static ports, devices. Every placement, placed or not, carries its
 *   metrics (nodes evaluated, filtered, exhausted; top candidates).
 * - `regexp` constraints are unanchored (as in Nomad): `^…$` matches the
 *   whole value. A missing attribute fails every operator, `!=` included. An
 *   invalid pattern matches no node and is reported as such.
 * - Identical instances (same job, spec and package) form one class: one
 *   feasibility pass; once the class fits nowhere, its remaining instances
 *   are reported with the reasons and largestFit computed at that moment.
 * - At most `sampleSize` feasible nodes are scored per task, scanning on from
 *   where the previous task's scan stopped; best score wins, ties go to the
 *   smaller node id.
 * - With `explain`, an unplaceable class also gets the smallest changes to
 *   its request that would fit now (smallest-change.ts), each checked
 *   through the same chain.
 * - Throws (TorcaError "internal") only for impossible input: negative or
 *   non-finite resources, duplicate task or node ids, a bad sampleSize.
 */
export { placeTasks } from "./place.js";
export { describeMetrics } from "./metrics.js";
export { DEFAULT_SAMPLE_SIZE } from "./types.js";
export type { SmallestChange } from "./smallest-change.js";
export type { Allocation, ClusterSnapshot, Placement, PlacementMetrics, PlacementResult, Preemption, SchedulerOptions, ScoredCandidate, TaskToPlace, Unplaced } from "./types.js";
export { SCORER_BINPACK, SCORER_SPREAD } from "./scorers/fit.js";
export { SCORER_FRAGMENTATION } from "./scorers/fragmentation.js";
export { SCORER_JOB_ANTI_AFFINITY } from "./scorers/job-anti-affinity.js";
export { SCORER_PACKAGE_CACHED } from "./scorers/package-cached.js";
