import { ForbiddenError, ValidationError } from "../../common/errors.js";
import type { JobSpec, NodeInfo } from "../../common/types.js";
import { formatBytes } from "../../common/units.js";
import { bandOf, reservationOf, type Band, type Usage } from "./usage.js";

/**
 * Quota arithmetic, pure: whether a submission fits what its namespace has
 * left (checked at admission against what other admissions in flight have
 * reserved, primary/admissions.ts, so that two submissions never both spend
 * the same remainder), and whether a new quota
 * keeps the prod quotas of all namespaces within the cell's capacity.
 */

/** One band's limits: cpu in cores, memory in bytes; no `instances`: any number of instances. */
export interface BandQuota {
  cpu: number;
  memory: number;
  instances?: number;
}

/** A namespace's quota. A namespace without one is unlimited. */
export type Quota = Record<Band, BandQuota>;

type Dimension = "instances" | "cpu" | "memory";

/** The task file field a refusal of each dimension is about (the CLI exits 2 for a refusal naming a field). */
const FIELDS: Record<Dimension, string> = { instances: "instances", cpu: "resources.cpu", memory: "resources.memory" };

/** Floating-point slack: 0.1 × 3 cores must fit a quota of 0.3. */
const EPSILON = 1e-9;

/** Cores to the millicore, without floating-point noise (0.1 × 3 shows as 0.3). */
export function coresText(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

function show(d: Dimension, n: number): string {
  return d === "memory" ? formatBytes(n) : d === "cpu" ? coresText(n) : String(n);
}

/**
 * Why this job may not be admitted into `namespace` with `used` held already,
 * or undefined when it fits (or the namespace has no quota). The message names
 * the quota, the ask and what is left, e.g.
 * `namespace a: prod cpu quota 8 exceeded: job asks 3 × 2 = 6, 4 in use, 4 left`.
 */
export function quotaRefusal(namespace: string, quota: Quota | undefined, used: Usage, spec: Pick<JobSpec, "priority" | "instances" | "resources">): { message: string; field: string } | undefined {
  if (!quota) return undefined;
  const band = bandOf(spec.priority);
  const limits = quota[band];
  const ask = reservationOf(spec);
  for (const d of ["instances", "cpu", "memory"] as const) {
    const limit = limits[d];
    if (limit === undefined || used[band][d] + ask[d] <= limit + EPSILON) continue;
    const asks = d === "instances" ? String(ask.instances) : `${spec.instances} × ${show(d, spec.resources[d])} = ${show(d, ask[d])}`;
    const left = Math.max(0, limit - used[band][d]);
    return {
      message: `namespace ${namespace}: ${band} ${d} quota ${show(d, limit)} exceeded: job asks ${asks}, ${show(d, used[band][d])} in use, ${show(d, left)} left`,
      field: FIELDS[d],
    };
  }
  return undefined;
}

/** Throws the refusal of `quotaRefusal` as a 403 (with its field, so `torca submit` exits 2). */
export function requireWithinQuota(namespace: string, quota: Quota | undefined, used: Usage, spec: Pick<JobSpec, "priority" | "instances" | "resources">): void {
  const refusal = quotaRefusal(namespace, quota, used, spec);
  if (refusal) throw new ForbiddenError(refusal.message, { field: refusal.field });
}

/** What prod quotas may add up to: the allocatable cpu and memory of the ready nodes. */
export function readyCapacity(nodes: readonly NodeInfo[]): { cpu: number; memory: number; nodes: number } {
  const cap = { cpu: 0, memory: 0, nodes: 0 };
  for (const n of nodes) {
    if (n.state !== "ready") continue;
    cap.cpu += n.allocatable.cpu;
    cap.memory += n.allocatable.memory;
    cap.nodes++;
  }
  return cap;
}

/**
 * Why `namespace` may not have `next` as its quota, or undefined: the prod
 * quotas of every namespace together (`next` in place of the namespace's
 * current one) must fit the ready nodes' allocatable cpu and memory, so that
 * every prod reservation can be placed at once. Lowering a prod quota is always allowed.
 */
export function prodCapacityRefusal(
  namespace: string,
  next: Quota,
  current: ReadonlyMap<string, Quota>,
  capacity: { cpu: number; memory: number; nodes: number },
): { message: string; field: string } | undefined {
  const before = current.get(namespace)?.prod;
  for (const d of ["cpu", "memory"] as const) {
    if (before && next.prod[d] <= before[d]) continue;
    let others = 0;
    for (const [ns, q] of current) if (ns !== namespace) others += q.prod[d];
    const total = others + next.prod[d];
    if (total <= capacity[d] + EPSILON) continue;
    return {
      message:
        `prod quotas together cannot exceed the cell's capacity: with namespace ${namespace} at ${show(d, next.prod[d])}, prod ${d} quotas total ${show(d, total)}, ` +
        `over the ${show(d, capacity[d])} allocatable on ${capacity.nodes} ready node(s) (other namespaces hold ${show(d, others)}; at most ${show(d, Math.max(0, capacity[d] - others))} is left for ${namespace})`,
      field: `prod.${d}`,
    };
  }
  return undefined;
}

/** Throws the refusal of `prodCapacityRefusal` as invalid input (400, exit 2). */
export function requireProdWithinCapacity(namespace: string, next: Quota, current: ReadonlyMap<string, Quota>, capacity: { cpu: number; memory: number; nodes: number }): void {
  const refusal = prodCapacityRefusal(namespace, next, current, capacity);
  if (refusal) throw new ValidationError([{ field: refusal.field, message: refusal.message }]);
}
