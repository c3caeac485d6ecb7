import { StaleEpochError } from "../../src/common/errors.js";
import type { AgentAd, ReportedTask, TaskDispatch } from "../../src/common/protocol.js";
import type { ExitInfo, Resources } from "../../src/common/types.js";

/**
 * One simulated machine: its advertisement and its task table, with the real
 * agent's rules (agent/tasks/runner.ts, agent/agent.ts) and no processes.
 *
 * - Start is idempotent by (task, attempt): the same or an older attempt is a
 *   no-op; a newer attempt replaces (stops) the one running.
 * - Every message carries the primary's epoch; one lower than the highest seen
 *   (from ZooKeeper's /epoch or from an earlier message) is refused.
 * - A task goes running at once. A batch task exits after its run time; a
 *   service task runs until stopped. `SIM_RUN_MS` and
 *   `SIM_EXIT_CODE` in the task's env override the run time and exit code.
 * - An exit is reported until the primary's reply says it is recorded
 *   (`markRecorded`), as the real agent does; exited tasks are forgotten after
 *   `retainExitedMs`.
 */

export interface SimTaskTiming {
  /** Run time of a batch task before it exits (ms). */
  batchRunMs: number;
  /** How long an exited task stays in the reports (ms). */
  retainExitedMs: number;
}

interface SimTask {
  taskId: string;
  attempt: number;
  state: "running" | "exited";
  ports: Record<string, number>;
  resources: Resources;
  startedAt: number;
  finishedAt?: number;
  exit?: ExitInfo;
  exitRecorded?: boolean;
  timer?: NodeJS.Timeout;
}

const STOPPED: ExitInfo = { exitCode: 143, signal: "SIGTERM", oomKilled: false, reason: "killed by SIGTERM" };

export class SimAgent {
  private readonly tasks = new Map<string, SimTask>();
  private maxEpoch = 0;
  private nextPort: number;
  private readonly usedPorts = new Set<number>();
  private closed = false;

  constructor(
    readonly ad: AgentAd,
    private readonly timing: SimTaskTiming,
    /** Called on every change of the task table (the cell sends a report soon after). */
    private readonly onChange: (agent: SimAgent) => void,
  ) {
    this.nextPort = ad.portRange[0];
  }

  get id(): string {
    return this.ad.id;
  }

  /** The highest epoch this machine has seen, from ZooKeeper or from a message. */
  noteEpoch(epoch: number): void {
    if (epoch > this.maxEpoch) this.maxEpoch = epoch;
  }

  admitEpoch(epoch: number): void {
    if (epoch < this.maxEpoch) throw new StaleEpochError(epoch, this.maxEpoch);
    this.noteEpoch(epoch);
  }

  /** Starts a dispatched task; false when this (task, attempt) or a newer one is already here. */
  start(d: TaskDispatch, now = Date.now()): boolean {
    this.admitEpoch(d.epoch);
    const cur = this.tasks.get(d.taskId);
    if (cur && cur.attempt >= d.attempt) return false;
    if (cur) this.finish(cur, STOPPED, now);
    const t: SimTask = { taskId: d.taskId, attempt: d.attempt, state: "running", ports: {}, resources: d.spec.resources, startedAt: now };
    this.tasks.set(d.taskId, t);
    try {
      for (const p of d.spec.ports) t.ports[p.name] = p.static ?? this.allocatePort();
    } catch (e) {
      // As the real runner: a start that fails is reported as an exit, not refused.
      this.finish(t, { exitCode: null, signal: null, oomKilled: false, reason: `failed to start: ${(e as Error).message}` }, now);
      return true;
    }
    if (d.spec.type === "batch") {
      const env = d.spec.env;
      const runMs = envInt(env.SIM_RUN_MS) ?? this.timing.batchRunMs;
      const code = envInt(env.SIM_EXIT_CODE) ?? 0;
      t.timer = setTimeout(() => this.finish(t, { exitCode: code, signal: null, oomKilled: false, reason: `exit ${code}` }), runMs);
    }
    this.onChange(this);
    return true;
  }

  /** Stops a task (of this attempt, when given); false when there is no such task. */
  stop(taskId: string, attempt: number | undefined, epoch: number): boolean {
    this.admitEpoch(epoch);
    const t = this.tasks.get(taskId);
    if (!t || (attempt !== undefined && t.attempt !== attempt)) return false;
    this.finish(t, STOPPED);
    return true;
  }

  private finish(t: SimTask, exit: ExitInfo, now = Date.now()): void {
    if (t.state === "exited") return;
    if (t.timer) clearTimeout(t.timer);
    t.timer = undefined;
    t.state = "exited";
    t.exit = exit;
    t.finishedAt = now;
    for (const port of Object.values(t.ports)) this.usedPorts.delete(port);
    if (!this.closed) this.onChange(this);
  }

  private allocatePort(): number {
    const [lo, hi] = this.ad.portRange;
    for (let i = 0; i <= hi - lo; i++) {
      const p = this.nextPort;
      this.nextPort = p >= hi ? lo : p + 1;
      if (!this.usedPorts.has(p)) {
        this.usedPorts.add(p);
        return p;
      }
    }
    throw new Error(`simulated agent ${this.id}: no free port in ${lo}-${hi}`);
  }

  /** How many tasks the next report to the primary carries. */
  get unrecordedCount(): number {
    let n = 0;
    for (const t of this.tasks.values()) if (!t.exitRecorded) n++;
    return n;
  }

  /** Exits the primary has recorded ("taskId#attempt", from its reply to a report): later reports leave them out. */
  markRecorded(keys: readonly string[]): void {
    for (const k of keys) {
      const i = k.lastIndexOf("#");
      const t = this.tasks.get(k.slice(0, i));
      if (t && t.state === "exited" && String(t.attempt) === k.slice(i + 1)) t.exitRecorded = true;
    }
  }

  /**
   * Every task held (level-triggered), as the real agent lists them; `forPrimary`
   * leaves out exits the primary has recorded. Drops exits past retention.
   */
  report(opts: { forPrimary?: boolean } = {}, now = Date.now()): ReportedTask[] {
    const out: ReportedTask[] = [];
    for (const t of this.tasks.values()) {
      if (t.state === "exited" && now - (t.finishedAt ?? now) > this.timing.retainExitedMs) {
        this.tasks.delete(t.taskId);
        continue;
      }
      if (opts.forPrimary && t.exitRecorded) continue;
      const r: ReportedTask = { taskId: t.taskId, attempt: t.attempt, state: t.state, startedAt: t.startedAt };
      if (Object.keys(t.ports).length) r.ports = t.ports;
      if (t.exit) r.exit = t.exit;
      if (t.finishedAt !== undefined) r.finishedAt = t.finishedAt;
      out.push(r);
    }
    return out;
  }

  /**
   * The machine's load as the real agent reports it; a simulated machine is
   * exactly as busy as its running tasks' reservations.
   */
  load(): { cpu1m: number; memoryUsed: number; diskFree: number } {
    let cpu = 0;
    let memory = 0;
    let disk = 0;
    for (const t of this.tasks.values()) {
      if (t.state !== "running") continue;
      cpu += t.resources.cpu;
      memory += t.resources.memory;
      disk += t.resources.disk;
    }
    return { cpu1m: cpu, memoryUsed: memory, diskFree: Math.max(0, this.ad.capacity.disk - disk) };
  }

  /** What this machine runs right now (task id → attempt). */
  running(): Map<string, number> {
    const m = new Map<string, number>();
    for (const t of this.tasks.values()) if (t.state === "running") m.set(t.taskId, t.attempt);
    return m;
  }

  task(taskId: string): { attempt: number; state: string } | undefined {
    const t = this.tasks.get(taskId);
    return t && { attempt: t.attempt, state: t.state };
  }

  /** Cancels the batch timers; nothing changes after this. */
  close(): void {
    this.closed = true;
    for (const t of this.tasks.values()) if (t.timer) clearTimeout(t.timer);
  }
}

function envInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}
