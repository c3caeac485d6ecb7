/**
 * The agent's side of reclamation (docs/reclamation.md): after each usage
 * reading, throttles reclaimed tasks through their cgroup's CPU quota and
 * evicts them (policy.ts decides) so that the machine's other tasks always get
 * what they reserved. Reclaimed tasks also get the least CPU weight
 * (cpu.shares 2 against the default 1024): under contention the others win
 * at once, before the next reading lowers any quota.
 */
import type { Logger } from "../../src/common/logger.js";
import type { CgroupV1 } from "../driver/cgroup.js";
import type { TaskRunner } from "../tasks/runner.js";
import type { UsageHistory } from "../usage-history.js";
import { decideReclaim, type ReclaimOptions, type TaskLoad } from "./policy.js";
import { runQueueWaitNs, waitRate } from "./run-queue.js";

/** cpu.shares of a reclaimed task: the kernel's least weight. */
export const RECLAIMED_CPU_SHARES = 2;

export interface EnforcerOptions extends ReclaimOptions {
  runner: TaskRunner;
  usage: UsageHistory;
  cgroup: CgroupV1;
  allocatable: () => { cpu: number; memory: number };
  stopGraceMs: number;
  log: Logger;
}

export class ReclaimEnforcer {
  private throttledSince: number | undefined;
  private busy = false;
  /** Per reclaimed cgroup: the cap last written (cores), so unchanged caps are not rewritten. */
  private readonly applied = new Map<string, number>();
  /** Per other task's cgroup: its last run-queue wait reading. */
  private readonly waits = new Map<string, { at: number; ns: number }>();

  constructor(private readonly o: EnforcerOptions) {}

  /** One pass at a time: a pass still writing cgroups when the next reading comes skips that reading. */
  async enforce(now: number): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.pass(now);
    } finally {
      this.busy = false;
    }
  }

  private async pass(now: number): Promise<void> {
    const running = this.o.runner.all().filter((r) => r.state === "running" && r.evicted === undefined);
    // Without reclaimed tasks there is nothing to give back: no reading, no state.
    if (!running.some((r) => r.dispatch.reclaimed === true)) {
      this.throttledSince = undefined;
      this.applied.clear();
      this.waits.clear();
      return;
    }
    const tasks: (TaskLoad & { cgroup?: string })[] = [];
    for (const r of running) {
      const d = r.dispatch;
      const latest = this.o.usage.latestOf(d.taskId);
      const last = latest?.attempt === d.attempt ? latest.sample : undefined;
      tasks.push({
        taskId: d.taskId,
        attempt: d.attempt,
        reclaimed: d.reclaimed === true,
        request: { cpu: d.spec.resources.cpu, memory: d.spec.resources.memory },
        ...(last ? { usage: { cpu: last.cpu, memory: last.memory } } : {}),
        ...(r.startedAt !== undefined ? { startedAt: r.startedAt } : {}),
        ...(r.handle?.cgroup !== undefined ? { cgroup: r.handle.cgroup } : {}),
      });
    }
    await this.addRunQueueWait(tasks, now);
    const decision = decideReclaim({ allocatable: this.o.allocatable(), tasks, now, ...(this.throttledSince !== undefined ? { throttledSince: this.throttledSince } : {}) }, this.o);
    this.throttledSince = decision.throttledSince;
    const live = new Set<string>();
    for (const t of tasks) {
      const cap = decision.caps.get(t.taskId);
      if (cap === undefined || t.cgroup === undefined) continue;
      live.add(t.cgroup);
      await this.apply(t.cgroup, t, cap).catch((e: unknown) => this.o.log.warn({ task: t.taskId, err: e }, "cannot set the cpu cap of a reclaimed task"));
    }
    for (const name of this.applied.keys()) if (!live.has(name)) this.applied.delete(name);
    for (const e of decision.evict) {
      this.o.log.info({ task: e.taskId, attempt: e.attempt, why: e.why }, "evicting a reclaimed task");
      await this.o.runner.evict(e.taskId, e.attempt, e.why, this.o.stopGraceMs).catch((err: unknown) => this.o.log.warn({ task: e.taskId, err }, "evicting a reclaimed task failed"));
    }
  }

  /**
   * The other tasks' cpu demand is their use plus their run-queue wait: one
   * starved by the machine's load still needs what it reserved.
   */
  private async addRunQueueWait(tasks: (TaskLoad & { cgroup?: string })[], now: number): Promise<void> {
    const seen = new Set<string>();
    for (const t of tasks) {
      if (t.reclaimed || t.cgroup === undefined) continue;
      seen.add(t.cgroup);
      const ns = await runQueueWaitNs(this.o.cgroup, t.cgroup);
      if (ns === undefined) continue;
      const rate = waitRate(this.waits.get(t.cgroup), now, ns);
      this.waits.set(t.cgroup, { at: now, ns });
      if (rate !== undefined && t.usage) t.usage = { ...t.usage, cpu: t.usage.cpu + rate };
    }
    for (const name of this.waits.keys()) if (!seen.has(name)) this.waits.delete(name);
  }

  private async apply(cgroup: string, t: TaskLoad, cap: number): Promise<void> {
    const previous = this.applied.get(cgroup);
    if (previous === undefined) await this.o.cgroup.setCpuShares(cgroup, RECLAIMED_CPU_SHARES);
    if (previous !== undefined && Math.abs(previous - cap) < 0.005) return;
    await this.o.cgroup.setCpuQuota(cgroup, cap);
    this.applied.set(cgroup, cap);
    if (cap < t.request.cpu && (previous === undefined || previous >= t.request.cpu)) this.o.log.info({ task: t.taskId, cores: Number(cap.toFixed(3)), request: t.request.cpu }, "throttling a reclaimed task");
    else if (previous !== undefined && previous < t.request.cpu) this.o.log.info({ task: t.taskId }, "reclaimed task no longer throttled");
  }
}
