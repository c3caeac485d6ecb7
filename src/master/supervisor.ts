import { spawn, type ChildProcess } from "node:child_process";
import { systemClock, type Clock, type TimerHandle } from "../common/clock.js";
import { ConfigError, ConflictError } from "../common/errors.js";
import { createLogger, type Logger } from "../common/logger.js";
import { withDefaults } from "../common/options.js";
import { processStartTime } from "../common/process.js";
import type { DaemonRecord } from "./records.js";

/**
 * The master's supervisor (after condor_master): runs the configured daemons
 * as child processes, restarts one that exits with exponential backoff,
 * reports crash loops, and stops them all cleanly.
 *
 * Adoption: given the records an earlier master left (records.ts), it takes
 * over a daemon still running from them instead of starting a second one. It
 * signals only processes it started itself or adopted, and an adopted one
 * only while its PID still has the recorded start time: a PID reused by an
 * unrelated process is never adopted nor signalled. An adopted daemon is not
 * its child, so its exit is noticed by polling /proc, with its status unknown.
 */

export interface DaemonSpec {
  /** Unique among the daemons, e.g. "manager", "agent". */
  name: string;
  /** argv; command[0] is looked up on PATH. */
  command: string[];
  /** Added to the master's environment. */
  env?: Record<string, string>;
  cwd?: string;
}

export interface BackoffConfig {
  initialMs: number;
  factor: number;
  maxMs: number;
}

export interface SupervisorConfig {
  daemons: DaemonSpec[];
  /** Delay before restart n after a failure: initial·factor^(n-1), capped at max. Default 1 s, 2, 60 s. */
  backoff?: Partial<BackoffConfig>;
  /** A run at least this long counts as healthy: the backoff starts over. Default 60 s. */
  stableMs?: number;
  /** More than `exits` exits within `windowMs` is a crash loop. Default 5 in 5 min. */
  crashLoop?: { exits: number; windowMs: number };
  /** Time between SIGTERM and SIGKILL on stop. Default 10 s. */
  stopGraceMs?: number;
  /** "inherit" (default) sends daemon output to the master's own stdout/stderr (the journal under systemd). */
  stdio?: "inherit" | "ignore";
  /** How often an adopted daemon is checked for having exited. Default 1 s. */
  adoptedPollMs?: number;
}

export interface ExitRecord {
  at: number;
  code: number | null;
  signal: string | null;
  /** How long that run lasted. */
  uptimeMs: number;
  /** Spawn failure (e.g. ENOENT) rather than an exit. */
  error?: string;
  /** An adopted daemon (not this master's child) or one that ended while no master ran: code and signal are unknown. */
  statusUnknown?: true;
}

/** running: child alive; backoff: waiting to restart; stopping: SIGTERM sent; stopped: not running, not coming back. */
export type DaemonState = "running" | "backoff" | "stopping" | "stopped";

export interface DaemonStatus {
  name: string;
  command: string[];
  state: DaemonState;
  pid?: number;
  restarts: number;
  startedAt?: number;
  uptimeMs?: number;
  lastExit?: ExitRecord;
  /** When the next start is due, in state backoff. */
  nextStartAt?: number;
  crashLooping: boolean;
  /** Running since before this master started: taken over from an earlier master. */
  adopted?: boolean;
}

export interface SupervisorHooks {
  /** Called once per crash-loop episode (again only after the daemon ran stable). */
  onCrashLoop?: (name: string, exits: ExitRecord[]) => void;
  /** Called after any state change (start, exit, stop), e.g. to rewrite the status file. */
  onChange?: () => void;
  /** What an earlier master recorded (records.ts): running daemons are adopted, restart histories carried on. */
  restore?: DaemonRecord[];
  /** A process's start time by PID (/proc/PID/stat); tests replace it. */
  startTimeOf?: (pid: number) => number | undefined;
  timers?: Clock;
  logger?: Logger;
}

const DEFAULTS = Object.freeze({
  backoff: Object.freeze({ initialMs: 1000, factor: 2, maxMs: 60_000 }),
  stableMs: 60_000,
  crashLoop: Object.freeze({ exits: 5, windowMs: 5 * 60_000 }),
  stopGraceMs: 10_000,
  stdio: "inherit" as const,
  adoptedPollMs: 1000,
});

/** One run of a daemon: a child of this master, or a process adopted from an earlier one (no `child`). */
interface Run {
  pid?: number;
  /** Its start time from /proc: with the PID, what identifies the process. */
  startTime?: number;
  child?: ChildProcess;
}

interface Daemon {
  spec: DaemonSpec;
  state: DaemonState;
  run?: Run;
  startedAt?: number;
  restarts: number;
  /** Failures since the last stable run; drives the backoff. */
  consecutiveFailures: number;
  recentExits: ExitRecord[];
  lastExit?: ExitRecord;
  crashLoopReported: boolean;
  restartTimer?: TimerHandle;
  nextStartAt?: number;
  exited?: Promise<void>;
  /** The current run was adopted from an earlier master. */
  adopted?: boolean;
  /** Checks an adopted run for having exited. */
  pollTimer?: TimerHandle;
  /** Being stopped to be started again with a changed command. */
  replacing?: boolean;
  killTimer?: TimerHandle;
}

function sameCommand(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function backoffDelay(failures: number, cfg: BackoffConfig): number {
  return Math.min(cfg.maxMs, cfg.initialMs * cfg.factor ** Math.max(0, failures - 1));
}

export class Supervisor {
  private readonly daemons = new Map<string, Daemon>();
  /** The config with every default filled in. */
  private readonly settings: Required<Omit<SupervisorConfig, "backoff">> & { backoff: BackoffConfig };
  private readonly timers: Clock;
  private readonly log: Logger;
  private stopping: Promise<void> | undefined;

  constructor(
    config: SupervisorConfig,
    private readonly hooks: SupervisorHooks = {},
  ) {
    this.settings = { ...withDefaults(DEFAULTS, config), backoff: withDefaults(DEFAULTS.backoff, config.backoff ?? {}) };
    // Not unref'd: a pending restart must keep the master alive.
    this.timers = hooks.timers ?? systemClock({ keepAlive: true });
    this.log = hooks.logger ?? createLogger("master");
    for (const spec of config.daemons) {
      if (this.daemons.has(spec.name)) throw new ConfigError(`daemon ${JSON.stringify(spec.name)} is configured twice`, "master.daemons");
      if (spec.command.length === 0) throw new ConfigError(`daemon ${JSON.stringify(spec.name)} has an empty command`, "master.daemons");
      this.daemons.set(spec.name, { spec, state: "stopped", restarts: 0, consecutiveFailures: 0, recentExits: [], crashLoopReported: false });
    }
  }

  private startTimeOf(pid: number): number | undefined {
    return (this.hooks.startTimeOf ?? processStartTime)(pid);
  }

  /**
   * Starts every daemon not running yet: one an earlier master left running
   * (per `hooks.restore`) is adopted; one it left in backoff starts when its
   * backoff ends; the rest start now.
   */
  start(): void {
    if (this.stopping) throw new ConflictError("supervisor is stopped");
    const restored = new Map((this.hooks.restore ?? []).map((r) => [r.name, r]));
    for (const d of this.daemons.values()) {
      if (d.state !== "stopped") continue;
      const r = restored.get(d.spec.name);
      restored.delete(d.spec.name);
      if (r) this.resume(d, r);
      else this.spawnDaemon(d);
    }
    // Daemons no longer configured: stop the ones still running, by verified PID.
    for (const r of restored.values()) {
      if (r.pid === undefined || r.pidStartTime === undefined || this.startTimeOf(r.pid) !== r.pidStartTime) continue;
      this.log.warn({ daemon: r.name, pid: r.pid }, "stopping a daemon no longer configured");
      this.signalPid(r.name, r.pid, r.pidStartTime, "SIGTERM");
    }
  }

  /** Carries on from an earlier master's record of `d`. */
  private resume(d: Daemon, r: DaemonRecord): void {
    Object.assign(d, { restarts: r.restarts, consecutiveFailures: r.consecutiveFailures, recentExits: r.recentExits, lastExit: r.lastExit, crashLoopReported: r.crashLoopReported });
    const now = this.timers.now();
    const alive = r.pid !== undefined && r.pidStartTime !== undefined && this.startTimeOf(r.pid) === r.pidStartTime;
    if (alive && sameCommand(r.command, d.spec.command)) {
      this.adopt(d, { pid: r.pid, startTime: r.pidStartTime }, r.startedAt ?? now);
      return;
    }
    if (alive) {
      // Its command changed in the config: replace it (stop, then start the new command once it is gone).
      this.log.warn({ daemon: d.spec.name, pid: r.pid, was: r.command }, "daemon command changed; replacing the running one");
      this.adopt(d, { pid: r.pid, startTime: r.pidStartTime }, r.startedAt ?? now);
      d.state = "stopping";
      d.replacing = true;
      this.signal(d, "SIGTERM");
      d.killTimer = this.timers.setTimer(() => this.signal(d, "SIGKILL"), this.settings.stopGraceMs);
      return;
    }
    if (r.pid !== undefined) {
      // It ended while no master watched it (or its PID now names another process): its status is unknown.
      d.lastExit = { at: now, code: null, signal: null, uptimeMs: now - (r.startedAt ?? now), statusUnknown: true };
      this.log.warn({ daemon: d.spec.name, pid: r.pid }, "daemon recorded by the previous master is gone; starting it");
      d.restarts++;
    }
    if (r.nextStartAt !== undefined && r.nextStartAt > now) this.scheduleStart(d, r.nextStartAt);
    else this.spawnDaemon(d);
  }

  private adopt(d: Daemon, run: Run, startedAt: number): void {
    d.run = run;
    d.startedAt = startedAt;
    d.state = "running";
    d.adopted = true;
    let done = false;
    d.exited = new Promise<void>((resolve) => {
      const poll = (): void => {
        if (done) return;
        if (run.pid !== undefined && this.startTimeOf(run.pid) === run.startTime) {
          d.pollTimer = this.timers.setTimer(poll, this.settings.adoptedPollMs);
          return;
        }
        done = true;
        this.onExit(d, run, { code: null, signal: null, statusUnknown: true });
        resolve();
      };
      poll();
    });
    this.log.info({ daemon: d.spec.name, pid: run.pid }, "adopted a daemon left running by the previous master");
    this.changed();
  }

  /** What the next master needs to carry on (records.ts). */
  records(): DaemonRecord[] {
    return [...this.daemons.values()].map((d) => ({
      name: d.spec.name,
      command: [...d.spec.command],
      ...(d.run?.pid !== undefined ? { pid: d.run.pid, pidStartTime: d.run.startTime, startedAt: d.startedAt } : {}),
      restarts: d.restarts,
      consecutiveFailures: d.consecutiveFailures,
      recentExits: d.recentExits,
      ...(d.lastExit ? { lastExit: d.lastExit } : {}),
      crashLoopReported: d.crashLoopReported,
      ...(d.state === "backoff" && d.nextStartAt !== undefined ? { nextStartAt: d.nextStartAt } : {}),
    }));
  }

  status(): DaemonStatus[] {
    const now = this.timers.now();
    return [...this.daemons.values()].map((d) => ({
      name: d.spec.name,
      command: [...d.spec.command],
      state: d.state,
      pid: d.run?.pid,
      restarts: d.restarts,
      startedAt: d.run ? d.startedAt : undefined,
      uptimeMs: d.run && d.startedAt !== undefined ? now - d.startedAt : undefined,
      lastExit: d.lastExit,
      nextStartAt: d.state === "backoff" ? d.nextStartAt : undefined,
      crashLooping: d.crashLoopReported,
      ...(d.run && d.adopted ? { adopted: true } : {}),
    }));
  }

  /**
   * SIGTERM to every daemon, SIGKILL to those still alive after the grace
   * period; resolves when all have exited. Pending restarts are cancelled.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const d of this.daemons.values()) {
      if (d.restartTimer) this.timers.clearTimer(d.restartTimer);
      d.restartTimer = undefined;
      if (d.run && d.exited) {
        d.state = "stopping";
        this.signal(d, "SIGTERM");
        waits.push(d.exited);
      } else {
        d.state = "stopped";
      }
    }
    this.changed();
    if (waits.length === 0) return;
    const killTimer = this.timers.setTimer(() => {
      for (const d of this.daemons.values()) if (d.run) this.signal(d, "SIGKILL");
    }, this.settings.stopGraceMs);
    await Promise.all(waits);
    this.timers.clearTimer(killTimer);
  }

  private signal(d: Daemon, sig: NodeJS.Signals): void {
    const run = d.run;
    if (run?.pid === undefined) return;
    // Our own child stays ours until we reap it; an adopted process only while its start time matches.
    if (run.child) this.signalPid(d.spec.name, run.pid, undefined, sig);
    else if (run.startTime !== undefined) this.signalPid(d.spec.name, run.pid, run.startTime, sig);
  }

  /** By PID, never by name; with `startTime`, only if that PID still names the process that started then. */
  private signalPid(name: string, pid: number, startTime: number | undefined, sig: NodeJS.Signals): void {
    if (startTime !== undefined && this.startTimeOf(pid) !== startTime) return;
    this.log.info({ daemon: name, pid, signal: sig }, "signalling daemon");
    try {
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    }
  }

  private spawnDaemon(d: Daemon): void {
    d.restartTimer = undefined;
    d.nextStartAt = undefined;
    d.adopted = false;
    const [file, ...args] = d.spec.command as [string, ...string[]];
    const child = spawn(file, args, {
      cwd: d.spec.cwd,
      env: { ...process.env, ...d.spec.env },
      stdio: this.settings.stdio,
    });
    // Read at once: the process exists from the fork on, and its start time never changes.
    const run: Run = { child, pid: child.pid, startTime: child.pid !== undefined ? this.startTimeOf(child.pid) : undefined };
    d.run = run;
    d.startedAt = this.timers.now();
    d.state = "running";
    let done = false;
    d.exited = new Promise<void>((resolve) => {
      const finish = (code: number | null, signal: string | null, error?: string): void => {
        if (done) return;
        done = true;
        this.onExit(d, run, { code, signal, error });
        resolve();
      };
      child.once("exit", (code, signal) => finish(code, signal));
      // A spawn failure emits "error" and no "exit"; errors after a successful spawn (a failed kill) are not exits.
      child.once("error", (err) => {
        if (child.pid === undefined) finish(null, null, err.message);
        else this.log.warn({ daemon: d.spec.name, err }, "daemon process error");
      });
    });
    this.log.info({ daemon: d.spec.name, pid: child.pid, command: d.spec.command }, "daemon started");
    this.changed();
  }

  private onExit(d: Daemon, run: Run, how: { code: number | null; signal: string | null; error?: string; statusUnknown?: true }): void {
    if (d.run !== run) return;
    const now = this.timers.now();
    const uptimeMs = now - (d.startedAt ?? now);
    const rec: ExitRecord = { at: now, code: how.code, signal: how.signal, uptimeMs, ...(how.error ? { error: how.error } : {}), ...(how.statusUnknown ? { statusUnknown: true } : {}) };
    d.run = undefined;
    d.lastExit = rec;
    for (const t of [d.pollTimer, d.killTimer]) if (t) this.timers.clearTimer(t);
    d.pollTimer = d.killTimer = undefined;
    if (d.replacing && !this.stopping) {
      d.replacing = false;
      this.log.info({ daemon: d.spec.name, ...rec }, "replaced daemon stopped; starting its new command");
      this.spawnDaemon(d);
      return;
    }
    if (d.state === "stopping" || this.stopping) {
      d.state = "stopped";
      this.log.info({ daemon: d.spec.name, ...rec }, "daemon stopped");
      this.changed();
      return;
    }
    if (uptimeMs >= this.settings.stableMs) {
      // It ran long enough to count as healthy: this exit starts a fresh backoff and a fresh crash-loop episode.
      d.consecutiveFailures = 0;
      d.crashLoopReported = false;
      d.recentExits = [];
    }
    d.consecutiveFailures++;
    d.recentExits = [...d.recentExits.filter((e) => now - e.at < this.settings.crashLoop.windowMs), rec];
    const delay = backoffDelay(d.consecutiveFailures, this.settings.backoff);
    this.log.warn({ daemon: d.spec.name, ...rec, restartInMs: delay }, "daemon exited; restarting");
    if (d.recentExits.length > this.settings.crashLoop.exits && !d.crashLoopReported) {
      d.crashLoopReported = true;
      this.log.error({ daemon: d.spec.name, exits: d.recentExits.length, windowMs: this.settings.crashLoop.windowMs }, "daemon is crash-looping");
      try {
        this.hooks.onCrashLoop?.(d.spec.name, d.recentExits.map((e) => ({ ...e })));
      } catch (e) {
        this.log.error({ err: e }, "onCrashLoop hook failed");
      }
    }
    this.scheduleStart(d, now + delay);
  }

  /** Backoff: the daemon starts again at `at` (counted as a restart). */
  private scheduleStart(d: Daemon, at: number): void {
    d.state = "backoff";
    d.nextStartAt = at;
    d.restartTimer = this.timers.setTimer(() => {
      if (this.stopping || d.state !== "backoff") return;
      d.restarts++;
      this.spawnDaemon(d);
    }, at - this.timers.now());
    this.changed();
  }

  private changed(): void {
    try {
      this.hooks.onChange?.();
    } catch (e) {
      this.log.error({ err: e }, "onChange hook failed");
    }
  }
}
