import { Counter, Histogram, type Registry } from "prom-client";
import type { DeliveryRecord } from "../alerting/types.js";
import { StaleEpochError } from "../common/errors.js";
import type { TaskInstance } from "../common/types.js";
import type { ZkOperationObserver } from "../coord/zk/session.js";
import type { Dispatcher } from "../manager/dispatcher/dispatcher.js";
import type { FenceReason, PrimaryObserver } from "../manager/primary/primary.js";
import type { RoundDecision } from "../manager/primary/round.js";
import { httpMetrics, httpRequestHistogramOptions } from "./http.js";
import { daemonRegistry, FAST_BUCKETS, seconds, SLOW_BUCKETS } from "./registry.js";
import { taskTransition } from "./task-transitions.js";

/**
 * The Central Manager's metric families. Every manager registers all of them
 * at start, primary or backup, so each serves the same families (a backup's
 * primary-only counters stay at zero). They are fed by hooks at the edges:
 * the HTTP middleware, the ZooKeeper session's operations, a dispatcher
 * wrapper, the primary's observer (rounds, task writes, fencing) and alert
 * deliveries; the scheduler itself knows nothing of them.
 */
export class ManagerMetrics implements PrimaryObserver {
  readonly registry: Registry = daemonRegistry();
  private readonly placementDuration = this.histogram("torca_placement_duration_seconds", "One placement round of the primary: the scheduler over every due task, and what to write, stop and dispatch", FAST_BUCKETS);
  private readonly submitToRunning = this.histogram("torca_submit_to_running_seconds", "From a task record's creation (submission or cron firing) to its first attempt reported running", SLOW_BUCKETS);
  private readonly dispatchDuration = new Histogram({ name: "torca_dispatch_duration_seconds", help: "Round trip of a start request to an agent (one or more start orders), by result (ok, error)", labelNames: ["result"] as const, buckets: FAST_BUCKETS, registers: [this.registry] });
  private readonly httpDuration = new Histogram({ ...httpRequestHistogramOptions(), buckets: FAST_BUCKETS, registers: [this.registry] });
  private readonly zkDuration = new Histogram({ name: "torca_zookeeper_operation_duration_seconds", help: "ZooKeeper operations of this manager's sessions, by operation and result (ok, error)", labelNames: ["operation", "result"] as const, buckets: FAST_BUCKETS, registers: [this.registry] });
  private readonly placements = this.counter("torca_placements_total", "Tasks placed on a node by the primary (each becomes a dispatch)");
  private readonly preemptions = this.counter("torca_preemptions_total", "Tasks stopped to make room for a higher-priority task");
  private readonly restarts = this.counter("torca_restarts_total", "Tasks restarted in place on their node after an exit");
  private readonly migrations = this.counter("torca_migrations_total", "Tasks moved off their node to be placed elsewhere (restarts exhausted, node drained or lost)");
  private readonly dispatchFailures = this.counter("torca_dispatch_failures_total", "Start orders an agent could not be reached with or refused (stale-epoch refusals count as fencing events)");
  private readonly alertsSent = new Counter({ name: "torca_alerts_sent_total", help: "Alert messages delivered, by channel", labelNames: ["channel"] as const, registers: [this.registry] });
  private readonly alertsFailed = new Counter({ name: "torca_alerts_failed_total", help: "Alert messages given up after their last delivery attempt, by channel", labelNames: ["channel"] as const, registers: [this.registry] });
  private readonly fencings = new Counter({ name: "torca_fencing_events_total", help: "Terms of this manager as primary that ended by fencing, by reason (session-lost, deposed, stale-epoch: an agent refused its epoch)", labelNames: ["reason"] as const, registers: [this.registry] });

  /** Times every request by route pattern and status; mount it outermost. */
  readonly http = httpMetrics(this.httpDuration);

  /** Times every ZooKeeper operation of a session (ZkOptions.observe). */
  readonly zookeeper: ZkOperationObserver = (operation, ms, ok) => this.zkDuration.observe({ operation, result: ok ? "ok" : "error" }, seconds(ms));

  round(decision: RoundDecision, ms: number): void {
    this.placementDuration.observe(seconds(ms));
    this.placements.inc(decision.dispatches.length);
  }

  taskWritten(prev: TaskInstance | undefined, next: TaskInstance): void {
    const t = taskTransition(prev, next);
    if (t.restart) this.restarts.inc();
    if (t.migration) this.migrations.inc();
    if (t.preemption) this.preemptions.inc();
    if (t.submitToRunningMs !== undefined) this.submitToRunning.observe(seconds(t.submitToRunningMs));
  }

  fenced(reason: Exclude<FenceReason, "shutdown">): void {
    this.fencings.inc({ reason });
  }

  constructor() {
    // Each reason's series exists from the start, so rate() and increase() see a zero rather than nothing.
    for (const reason of ["session-lost", "deposed", "stale-epoch"] as const) this.fencings.inc({ reason }, 0);
  }

  /** A delivery record changed: counted once it is final. */
  alertDelivery(rec: DeliveryRecord): void {
    if (rec.status === "sent") this.alertsSent.inc({ channel: rec.channel });
    else if (rec.status === "failed") this.alertsFailed.inc({ channel: rec.channel });
  }

  /** `inner` with each start order timed and its failures counted. */
  timedDispatcher(inner: Dispatcher): Dispatcher {
    return {
      start: async (nodeUrl, ds) => {
        const end = this.dispatchDuration.startTimer();
        try {
          const results = await inner.start(nodeUrl, ds);
          end({ result: "ok" });
          const refused = results.filter((r) => r.error && r.error.code !== "stale_epoch").length;
          if (refused) this.dispatchFailures.inc(refused);
          return results;
        } catch (e) {
          end({ result: "error" });
          if (!(e instanceof StaleEpochError)) this.dispatchFailures.inc(ds.length);
          throw e;
        }
      },
      stop: (nodeUrl, taskId, req) => inner.stop(nodeUrl, taskId, req),
      signal: (nodeUrl, taskId, req) => inner.signal(nodeUrl, taskId, req),
    };
  }

  private histogram(name: string, help: string, buckets: number[]): Histogram {
    return new Histogram({ name, help, buckets, registers: [this.registry] });
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }
}
