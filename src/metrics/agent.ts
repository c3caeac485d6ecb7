import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { ReportedTask } from "../common/protocol.js";
import { httpMetrics, httpRequestHistogramOptions } from "./http.js";
import { daemonRegistry, FAST_BUCKETS, SLOW_BUCKETS } from "./registry.js";

/** What the agent's families are read from when scraped: the task table (with the cgroup readings of its last refresh) and the package cache. */
export interface AgentMetricSources {
  tasks(): ReportedTask[];
  packages(): { misses: number; hits: number; coalesced: number; bytesTransferred: number; integrityFailures: number } | undefined;
}

/** A task record as the runner announces its changes (agent/tasks/runner.ts, "change"). */
export interface LaunchedRecord {
  dispatch: { taskId: string; attempt: number };
  state: string;
  error?: string;
}

/**
 * An Execute Server's metric families. Launches are timed from the runner's
 * change events; the task table, per-task usage and package figures are read
 * when scraped, from what the agent already keeps for its reports.
 */
export class AgentMetrics {
  readonly registry: Registry = daemonRegistry();
  private readonly launches = new Counter({ name: "torca_agent_task_launches_total", help: "Task attempts launched, by result (started, failed: it exited before running)", labelNames: ["result"] as const, registers: [this.registry] });
  private readonly launchDuration = new Histogram({ name: "torca_agent_launch_duration_seconds", help: "From a start order accepted to the task running: package, ports, user and the driver's start", buckets: SLOW_BUCKETS, registers: [this.registry] });
  private readonly staleEpochs = new Counter({ name: "torca_agent_stale_epoch_refusals_total", help: "Orders refused because they carried an epoch older than one already seen (a deposed primary fenced off)", registers: [this.registry] });
  private readonly httpDuration = new Histogram({ ...httpRequestHistogramOptions(), buckets: FAST_BUCKETS, registers: [this.registry] });
  /** Start times of attempts accepted and not yet running ("taskId#attempt" → performance.now()). */
  private readonly starting = new Map<string, number>();

  /** Times every request by route pattern and status; mount it outermost. */
  readonly http = httpMetrics(this.httpDuration);

  constructor(sources: AgentMetricSources) {
    const registers = [this.registry];
    const running = () => sources.tasks().filter((t) => t.state === "running");
    new Gauge({
      name: "torca_agent_tasks_running",
      help: "Task attempts running on this agent",
      registers,
      collect() {
        this.set(running().length);
      },
    });
    const packageCounter = (name: string, help: string, read: (s: NonNullable<ReturnType<AgentMetricSources["packages"]>>) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const s = sources.packages();
          this.reset();
          if (s) this.inc(read(s));
        },
      });
    packageCounter("torca_agent_package_pulls_total", "Package pulls started (cache misses; requests joining a pull under way are not counted)", (s) => s.misses);
    packageCounter("torca_agent_package_cache_hits_total", "Package requests answered from the cache", (s) => s.hits);
    packageCounter("torca_agent_package_bytes_transferred_total", "Package bytes read from shared storage or a manager, failed attempts included", (s) => s.bytesTransferred);
    packageCounter("torca_agent_package_integrity_failures_total", "Package pulls whose bytes did not match the digest", (s) => s.integrityFailures);
    const usage = (name: string, help: string, read: (u: NonNullable<ReportedTask["usage"]>) => number | undefined, kind: "gauge" | "counter" = "gauge") => {
      const options = {
        name,
        help,
        labelNames: ["task"] as const,
        registers,
        collect(this: Gauge<"task"> | Counter<"task">) {
          this.reset();
          for (const t of running()) {
            const v = t.usage ? read(t.usage) : undefined;
            if (v !== undefined) this.inc({ task: t.taskId }, v);
          }
        },
      };
      return kind === "gauge" ? new Gauge(options) : new Counter(options);
    };
    usage("torca_agent_task_cpu_seconds_total", "CPU time of each running task's cgroup", (u) => (u.cpuNs === undefined ? undefined : u.cpuNs / 1e9), "counter");
    usage("torca_agent_task_memory_bytes", "Memory in use by each running task's cgroup", (u) => u.memoryBytes);
    usage("torca_agent_task_memory_peak_bytes", "Peak memory of each running task's cgroup", (u) => u.memoryPeakBytes);
    usage("torca_agent_task_pids", "Processes in each running task's cgroup", (u) => u.pids);
  }

  /** A task record changed: an accepted attempt starts its launch timer, and ends it running or exited. */
  taskChanged(r: LaunchedRecord): void {
    const key = `${r.dispatch.taskId}#${r.dispatch.attempt}`;
    if (r.state === "starting") {
      this.starting.set(key, performance.now());
      return;
    }
    const t0 = this.starting.get(key);
    if (t0 === undefined) return;
    if (r.state === "running") {
      this.launches.inc({ result: "started" });
      this.launchDuration.observe((performance.now() - t0) / 1000);
    } else if (r.state === "exited") this.launches.inc({ result: "failed" });
    else return;
    this.starting.delete(key);
  }

  /** `admit` (the epoch fence's check) with its refusals counted. */
  countingStaleEpochs(admit: (epoch: number) => void): (epoch: number) => void {
    return (epoch) => {
      try {
        admit(epoch);
      } catch (e) {
        this.staleEpochs.inc();
        throw e;
      }
    };
  }
}
