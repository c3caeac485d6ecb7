/**
 * A task's reservation estimate, as Borg's reservation: what the task really
 * needs, worked out from its usage, pure (time passed in).
 *
 * Per dimension (cpu cores, memory bytes), with `peak` the largest reading in
 * the last `windowMs` and `target = peak × (1 + margin)`. Readings are kept as
 * the maxima of WINDOW_BUCKETS buckets, so an estimate holds at most that many
 * points whatever the report interval (a peak may count up to one bucket
 * longer than the window):
 * - a fresh attempt starts at its request;
 * - above the current estimate the target is taken at once (a task whose use
 *   rises gets it back without delay);
 * - below it the estimate decays toward the target exponentially, with a time
 *   constant of a quarter of the window (an idle task lends most of its
 *   request after about one window);
 * - it is never below the latest reading and never above the request (the
 *   task's limit: its cgroup caps it there anyway).
 *
 * CPU readings are cumulative (cgroup CPU time): a reading's cores are the CPU
 * time since the previous reading over the time between them.
 */
import type { Resources } from "../../common/types.js";

export interface EstimateOptions {
  /** Headroom over the peak, as a share of it (0.2 = 20 %). */
  margin: number;
  /** How far back the peak looks. */
  windowMs: number;
}

/** cpu in cores, memory in bytes. */
export interface Demand {
  cpu: number;
  memory: number;
}

/** One reading as agents report it: cumulative CPU time and current memory, and when the agent took it (its clock). */
export interface Reading {
  cpuNs: number;
  memoryBytes: number;
  /**
   * Reports carry the agent's latest reading, taken at its own interval, and
   * arrive whenever something changed: a rate between arrival times would
   * divide one interval's CPU time by however little time lay between two
   * reports. Without it (an older agent), arrival time stands in.
   */
  sampledAt?: number;
}

/** The largest readings of one bucket of the window, which starts at `at`. */
interface Point extends Demand {
  at: number;
}

export const WINDOW_BUCKETS = 30;

export interface TaskEstimate {
  attempt: number;
  /** The reservation: what the task is estimated to need now. */
  reservation: Demand;
  /** The latest usage (cores over the last interval, bytes now); absent before the first rate is known. */
  usage?: Demand;
  /** When the reservation was last worked out. */
  at: number;
  /** Bucket maxima inside the window, oldest first. */
  readonly points: readonly Point[];
  /** The previous cumulative CPU reading, for the next rate. */
  readonly lastCpu?: { at: number; cpuNs: number };
}

/** The estimate of a new attempt: its request, until readings say otherwise. */
export function freshEstimate(request: Resources, attempt: number, now: number, startedAt?: number): TaskEstimate {
  return { attempt, reservation: { cpu: request.cpu, memory: request.memory }, at: now, points: [], ...(startedAt !== undefined && startedAt <= now ? { lastCpu: { at: startedAt, cpuNs: 0 } } : {}) };
}

/** The estimate after one more reading taken at `now`. */
export function nextEstimate(prev: TaskEstimate, reading: Reading, request: Resources, now: number, opts: EstimateOptions): TaskEstimate {
  const last = prev.lastCpu;
  const sampledAt = reading.sampledAt ?? now;
  // The same reading again (a report between two of the agent's samples) tells nothing new.
  if (last !== undefined && sampledAt <= last.at) return prev;
  const lastCpu = { at: sampledAt, cpuNs: reading.cpuNs };
  // Without an earlier reading there is no rate yet: the reading only sets the baseline.
  if (last === undefined) return { ...prev, lastCpu };
  const usage = { cpu: Math.max(0, reading.cpuNs - last.cpuNs) / ((sampledAt - last.at) * 1e6), memory: reading.memoryBytes };
  const since = now - opts.windowMs;
  const points = prev.points.filter((p) => p.at > since);
  const bucket = points.at(-1);
  if (bucket !== undefined && now - bucket.at < opts.windowMs / WINDOW_BUCKETS) points[points.length - 1] = { at: bucket.at, cpu: Math.max(bucket.cpu, usage.cpu), memory: Math.max(bucket.memory, usage.memory) };
  else points.push({ at: now, ...usage });
  let peakCpu = 0;
  let peakMemory = 0;
  for (const p of points) {
    peakCpu = Math.max(peakCpu, p.cpu);
    peakMemory = Math.max(peakMemory, p.memory);
  }
  const keep = Math.exp(-Math.max(0, now - prev.at) / (opts.windowMs / 4));
  const reservation = {
    cpu: settle(prev.reservation.cpu, peakCpu * (1 + opts.margin), usage.cpu, request.cpu, keep),
    memory: settle(prev.reservation.memory, peakMemory * (1 + opts.margin), usage.memory, request.memory, keep),
  };
  return { attempt: prev.attempt, reservation, usage, at: now, points, lastCpu };
}

/** Up to the target at once, down toward it by the decay factor `keep`; then within [current, limit]. */
function settle(previous: number, target: number, current: number, limit: number, keep: number): number {
  const moved = target >= previous ? target : target + (previous - target) * keep;
  return Math.min(limit, Math.max(current, moved));
}

/** What an estimate leaves unused of the request (request − reservation, per dimension; never negative). */
export function unusedReservation(request: Resources, estimate: Pick<TaskEstimate, "reservation">): Demand {
  return { cpu: Math.max(0, request.cpu - estimate.reservation.cpu), memory: Math.max(0, request.memory - estimate.reservation.memory) };
}
