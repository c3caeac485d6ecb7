import { collectDefaultMetrics, Registry } from "prom-client";

/** Seconds: from a millisecond figure. */
export const seconds = (ms: number): number => ms / 1000;

/** Buckets (seconds) for work the daemon does itself: a ZooKeeper write, a placement round, a request. */
export const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets (seconds) for what waits on other machines: a task reaching running, a package pulled. */
export const SLOW_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * A daemon's own registry (never prom-client's global one: tests run several
 * daemons in one process), with the process and Node.js runtime metrics.
 */
export function daemonRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters (promtool refuses them); the same figures by type remain: nodejs_active_handles etc.
  for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) registry.removeSingleMetric(name);
  return registry;
}
