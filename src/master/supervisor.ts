import { spawn, type ChildProcess } from "node:child_process";
import { systemClock, type Clock, type TimerHandle } from "../common/clock.js";
import { ConfigError, ConflictError } from "../common/errors.js";
import { createLogger, type Logger } from "../common/logger.js";
import { withDefaults } from "../common/options.js";

/**
 * The master's supervisor (after condor_master): runs the configured daemons
 * as child processes, restarts one that exits with exponential backoff,
 * reports crash loops, and stops them all cleanly. It only ever signals the
 * PIDs of children it spawned itself.
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
}

export interface ExitRecord {
  at: number;
  code: number | null;
  signal: string | null;
  /** How long that run lasted. */
  uptimeMs: number;
  /** Spawn failure (e.g. ENOENT) rather than an exit. */
  error?: string;
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
}

export interface SupervisorHooks {
  /** Called once per crash-loop episode (again only after the daemon ran stable). */
  onCrashLoop?: (name: string, exits: ExitRecord[]) => void;
  /** Called after any state change (start, exit, stop), e.g. to rewrite the status file. */
  onChange?: () => void;
  timers?: Clock;
  logger?: Logger;
}

const DEFAULTS = Object.freeze({
  backoff: Object.freeze({ initialMs: 1000, factor: 2, maxMs: 60_000 }),
  stableMs: 60_000,
  crashLoop: Object.freeze({ exits: 5, windowMs: 5 * 60_000 }),
  stopGraceMs: 10_000,
  stdio: "inherit" as const,
});

interface Daemon {
  spec: DaemonSpec;
  state: DaemonState;
  child?: ChildProcess;
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

  /** Starts every daemon not running yet. */
  start(): void {
    if (this.stopping) throw new ConflictError("supervisor is stopped");
    for (const d of this.daemons.values()) if (d.state === "stopped") this.spawnDaemon(d);
  }

  status(): DaemonStatus[] {
    const now = this.timers.now();
    return [...this.daemons.values()].map((d) => ({
      name: d.spec.name,
      command: [...d.spec.command],
      state: d.state,
      pid: d.child?.pid,
      restarts: d.restarts,
      startedAt: d.child ? d.startedAt : undefined,
      uptimeMs: d.child && d.startedAt !== undefined ? now - d.startedAt : undefined,
      lastExit: d.lastExit,
      nextStartAt: d.state === "backoff" ? d.nextStartAt : undefined,
      crashLooping: d.crashLoopReported,
    }));
  }

  /**
   * SIGTERM to every child, SIGKILL to those still alive after the grace
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
      if (d.child && d.exited) {
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
      for (const d of this.daemons.values()) if (d.child) this.signal(d, "SIGKILL");
    }, this.settings.stopGraceMs);
    await Promise.all(waits);
    this.timers.clearTimer(killTimer);
  }

  private signal(d: Daemon, sig: NodeJS.Signals): void {
    const pid = d.child?.pid;
    if (pid === undefined) return;
    this.log.info({ daemon: d.spec.name, pid, signal: sig }, "signalling daemon");
    try {
      // By PID of our own child, never by name.
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    }
  }

  private spawnDaemon(d: Daemon): void {
    d.restartTimer = undefined;
    d.nextStartAt = undefined;
    const [file, ...args] = d.spec.command as [string, ...string[]];
    const child = spawn(file, args, {
      cwd: d.spec.cwd,
      env: { ...process.env, ...d.spec.env },
      stdio: this.settings.stdio,
    });
    d.child = child;
    d.startedAt = this.timers.now();
    d.state = "running";
    let done = false;
    d.exited = new Promise<void>((resolve) => {
      const finish = (code: number | null, signal: string | null, error?: string): void => {
        if (done) return;
        done = true;
        this.onExit(d, child, { code, signal, error });
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

  private onExit(d: Daemon, child: ChildProcess, how: { code: number | null; signal: string | null; error?: string }): void {
    if (d.child !== child) return;
    const now = this.timers.now();
    const uptimeMs = now - (d.startedAt ?? now);
    const rec: ExitRecord = { at: now, code: how.code, signal: how.signal, uptimeMs, ...(how.error ? { error: how.error } : {}) };
    d.child = undefined;
    d.lastExit = rec;
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
    d.state = "backoff";
    d.nextStartAt = now + delay;
    d.restartTimer = this.timers.setTimer(() => {
      if (this.stopping || d.state !== "backoff") return;
      d.restarts++;
      this.spawnDaemon(d);
    }, delay);
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
