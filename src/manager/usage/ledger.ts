import type { AgentReport, ReportedTask } from "../../common/protocol.js";
import { NO_USAGE, type TaskUsage } from "../../history/record.js";

/**
 * Per-task usage, collected once from the agents' reports: the one place the
 * history archive, reservation estimates and page graphs read it from.
 *
 * What agents report: while a task runs, its cgroup's cumulative CPU time
 * (`cpuNs`), its current memory (`memoryBytes`) and the cgroup's peak
 * (`memoryPeakBytes`), read once per report interval; at exit, the final CPU
 * time and peak from the exit record. CPU seconds are the last cumulative
 * reading; memory byte-seconds integrate the instantaneous readings over the
 * report intervals (trapezoids, so a task that lives shorter than one interval
 * counts only what was read); wall time is the agent's finishedAt − startedAt.
 * Each attempt is kept apart and a task's totals are the sum of its attempts.
 *
 * The ledger lives in the primary's memory; a task's totals are written into
 * its record with the exit that ends it, so a later primary archives them. A
 * task still running at a failover keeps its CPU time and peak (cumulative
 * readings) and loses the memory integral of the attempt's earlier reports.
 */

interface AttemptUsage {
  cpuNs: number;
  memoryByteSeconds: number;
  peakMemoryBytes: number;
  wallSeconds: number;
  /** The last instantaneous memory reading and when it was taken. */
  lastMemory?: { at: number; bytes: number };
}

export class UsageLedger {
  /** taskId → attempt → usage. */
  private readonly tasks = new Map<string, Map<number, AttemptUsage>>();

  /** Folds one agent report in, read at `now`. */
  note(report: AgentReport, now: number): void {
    for (const t of report.tasks) this.noteTask(t, now);
  }

  noteTask(t: ReportedTask, now: number): void {
    if (!t.usage && t.state !== "exited") return;
    let attempts = this.tasks.get(t.taskId);
    if (!attempts) this.tasks.set(t.taskId, (attempts = new Map()));
    let a = attempts.get(t.attempt);
    if (!a) attempts.set(t.attempt, (a = { cpuNs: 0, memoryByteSeconds: 0, peakMemoryBytes: 0, wallSeconds: 0 }));
    const u = t.usage;
    if (u?.cpuNs !== undefined) a.cpuNs = Math.max(a.cpuNs, u.cpuNs);
    if (u?.memoryPeakBytes !== undefined) a.peakMemoryBytes = Math.max(a.peakMemoryBytes, u.memoryPeakBytes);
    if (u?.memoryBytes !== undefined && t.state === "running") {
      a.peakMemoryBytes = Math.max(a.peakMemoryBytes, u.memoryBytes);
      const at = now;
      if (a.lastMemory && at > a.lastMemory.at) a.memoryByteSeconds += ((a.lastMemory.bytes + u.memoryBytes) / 2) * ((at - a.lastMemory.at) / 1000);
      a.lastMemory = { at, bytes: u.memoryBytes };
    }
    if (t.startedAt !== undefined) a.wallSeconds = Math.max(0, ((t.finishedAt ?? now) - t.startedAt) / 1000);
  }

  /** A task's totals over its attempts; NO_USAGE when nothing was reported. */
  totals(taskId: string): TaskUsage {
    const attempts = this.tasks.get(taskId);
    if (!attempts) return NO_USAGE;
    const sum = { cpuSeconds: 0, memoryByteSeconds: 0, peakMemoryBytes: 0, wallSeconds: 0 };
    for (const a of attempts.values()) {
      sum.cpuSeconds += a.cpuNs / 1e9;
      sum.memoryByteSeconds += a.memoryByteSeconds;
      sum.peakMemoryBytes = Math.max(sum.peakMemoryBytes, a.peakMemoryBytes);
      sum.wallSeconds += a.wallSeconds;
    }
    return sum;
  }

  /** Drops a task once archived (its totals live in the history store from then on). */
  forget(taskId: string): void {
    this.tasks.delete(taskId);
  }

  get size(): number {
    return this.tasks.size;
  }
}
