import type { Job, TaskInstance } from "../../common/types.js";
import type { Demand } from "./estimate.js";
import type { ReservationEstimates } from "./reservations.js";

/** A running task's request, reservation estimate and latest usage, as the API and pages show them. */
export interface EstimateView {
  request: Demand;
  reservation: Demand;
  usage?: Demand;
}

/** The estimate of `t`'s current attempt, when the primary has one (only for running tasks its node reported). */
export function estimateOf(t: TaskInstance, job: Job | undefined, estimates: ReservationEstimates | undefined): EstimateView | undefined {
  const e = job && t.state === "running" ? estimates?.of(t) : undefined;
  if (!e || !job) return undefined;
  return { request: { cpu: job.spec.resources.cpu, memory: job.spec.resources.memory }, reservation: e.reservation, ...(e.usage ? { usage: e.usage } : {}) };
}

/** `t` with its `estimate` (EstimateView) when there is one. */
export function withEstimate(t: TaskInstance, job: Job | undefined, estimates: ReservationEstimates | undefined): TaskInstance & { estimate?: EstimateView } {
  const estimate = estimateOf(t, job, estimates);
  return estimate ? { ...t, estimate } : t;
}
