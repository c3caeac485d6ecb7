import type { AgentReport } from "../../common/protocol.js";
import { PRIORITY_PROD, type Job, type Resources, type TaskInstance } from "../../common/types.js";
import { freshEstimate, nextEstimate, unusedReservation, type Demand, type EstimateOptions, type TaskEstimate } from "./estimate.js";

/**
 * The primary's reservation estimates of running tasks (estimate.ts), fed by
 * the agents' reports. Kept in memory: a new primary starts every task at its
 * request again, which only ever lends less.
 */
export class ReservationEstimates {
  /** taskId → the node reporting it and the estimate of its current attempt. */
  private readonly tasks = new Map<string, { nodeId: string; estimate: TaskEstimate }>();
  /** node id → the tasks of `tasks` it reported: a report forgets what its node stopped running without a scan of every task. */
  private readonly byNode = new Map<string, Set<string>>();
  /** node id → when it last evicted a reclaimed task. */
  private readonly evictions = new Map<string, number>();

  constructor(private readonly opts: EstimateOptions) {}

  /**
   * Folds one agent report in, read at `now`. `requestOf` gives a task's
   * request (undefined: its job is gone). Tasks the node no longer runs are forgotten.
   */
  note(report: AgentReport, now: number, requestOf: (taskId: string) => Resources | undefined): void {
    const nodeId = report.agentId;
    const running = new Set<string>();
    for (const rt of report.tasks) {
      if (rt.state !== "running") continue;
      const request = requestOf(rt.taskId);
      if (request === undefined) continue;
      running.add(rt.taskId);
      let entry = this.tasks.get(rt.taskId);
      if (entry === undefined || entry.nodeId !== nodeId || entry.estimate.attempt !== rt.attempt) {
        if (entry !== undefined) this.byNode.get(entry.nodeId)?.delete(rt.taskId);
        entry = { nodeId, estimate: freshEstimate(request, rt.attempt, now, rt.startedAt) };
        this.tasks.set(rt.taskId, entry);
      }
      const u = rt.usage;
      if (u?.cpuNs !== undefined && u.memoryBytes !== undefined) entry.estimate = nextEstimate(entry.estimate, { cpuNs: u.cpuNs, memoryBytes: u.memoryBytes, ...(u.sampledAt !== undefined ? { sampledAt: u.sampledAt } : {}) }, request, now, this.opts);
    }
    for (const taskId of this.byNode.get(nodeId) ?? []) {
      if (!running.has(taskId) && this.tasks.get(taskId)?.nodeId === nodeId) this.tasks.delete(taskId);
    }
    if (running.size > 0) this.byNode.set(nodeId, running);
    else this.byNode.delete(nodeId);
    if (report.tasks.some((rt) => rt.evicted !== undefined)) this.evictions.set(nodeId, now);
  }

  /** The estimate of `t`'s current attempt, if its node reported it running. */
  of(t: Pick<TaskInstance, "id" | "attempt" | "nodeId">): TaskEstimate | undefined {
    const entry = this.tasks.get(t.id);
    return entry && entry.nodeId === t.nodeId && entry.estimate.attempt === t.attempt ? entry.estimate : undefined;
  }

  /**
   * Reclaimed capacity per node: what the prod tasks (priority ≥ prod) running
   * there reserved but are estimated not to need (request − reservation). A
   * node that evicted a reclaimed task within the last window lends nothing:
   * its owners needed more than their estimates show (e.g. cpu they waited
   * for), and placing there again would only be evicted again.
   */
  reclaimableByNode(jobs: ReadonlyMap<string, Job>, running: Iterable<TaskInstance>, now: number): Map<string, Demand> {
    const byNode = new Map<string, Demand>();
    for (const [nodeId, at] of this.evictions) if (now - at >= this.opts.windowMs) this.evictions.delete(nodeId);
    for (const t of running) {
      const job = jobs.get(t.jobId);
      if (job === undefined || job.spec.priority < PRIORITY_PROD || t.nodeId === undefined || this.evictions.has(t.nodeId)) continue;
      const estimate = this.of(t);
      if (estimate === undefined) continue;
      const unused = unusedReservation(job.spec.resources, estimate);
      const sum = byNode.get(t.nodeId) ?? { cpu: 0, memory: 0 };
      byNode.set(t.nodeId, { cpu: sum.cpu + unused.cpu, memory: sum.memory + unused.memory });
    }
    return byNode;
  }

  get size(): number {
    return this.tasks.size;
  }
}

/** With reclamation on in the cell: a batch task of a job below prod priority that did not opt out (`reclaimable: false`). */
export function mayUseReclaimed(job: Job): boolean {
  return job.spec.type === "batch" && job.spec.priority < PRIORITY_PROD && (job.spec.reclaimable ?? true);
}
