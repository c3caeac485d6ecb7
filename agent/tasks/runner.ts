import { EventEmitter, once } from "node:events";
import { chmod, mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConflictError, DriverError, NotFoundError, toTorcaError, UnavailableError } from "../../src/common/errors.js";
import type { Logger } from "../../src/common/logger.js";
import type { ReportedTask, TaskDispatch } from "../../src/common/protocol.js";
import type { ExitInfo } from "../../src/common/types.js";
import type { ExecStart } from "../../src/exec/frames.js";
import type { Driver, MemberState, TaskHandle, TaskUsage } from "../driver/driver.js";
import { underTerminal, type ExecCommand } from "../driver/exec.js";
import { isRoot } from "../driver/fingerprint.js";
import { instanceName } from "../driver/names.js";
import type { PackageCache, PackageLease } from "../packages/cache.js";
import type { AgentDevices, DeviceLaunch } from "../devices/devices.js";
import type { PortAllocator } from "./ports.js";
import { readRecord, recordFileOf } from "./record.js";
import type { TaskUser, TaskUsers } from "./task-users.js";

/** The package lease of one (task, attempt). */
function leaseKey(d: Pick<TaskDispatch, "taskId" | "attempt">): string {
  return `${d.taskId}#${d.attempt}`;
}

/**
 * The agent's task table: starts dispatched tasks through a driver,
 * watches them exit, and keeps a persisted record per (task, attempt) so a
 * restarted agent re-adopts running tasks and learns the exits it missed.
 *
 * Start is idempotent by (task, attempt). A newer attempt of a task this agent
 * still runs stops the older one first: one task never runs twice here.
 *
 * Modes (least privilege, the agent runs as root; tasks under their own uids,
 * see task-users.ts): the data dir, tasks/ and each attempt dir are 0711, so
 * a task can pass through to its own work dir but list nothing; the agent's
 * files (records, logs, exit records) are 0600; the
 * attempt's work/ is the task's, 0700 (prepareWorkDir).
 */

export type LocalState = "starting" | "running" | "exited";

export interface TaskRecord {
  dispatch: TaskDispatch;
  state: LocalState;
  dir: string;
  handle?: TaskHandle;
  ports: Record<string, number>;
  exit?: ExitInfo;
  error?: string;
  startedAt?: number;
  finishedAt?: number;
  stopRequested?: boolean;
  /** The primary has recorded this exit: later reports leave it out (in memory; a restarted agent reports it once more). */
  exitRecorded?: boolean;
  /** The user the attempt runs as; its uid stays held until the attempt's processes are gone. */
  user?: TaskUser;
  /** Final CPU time and peak memory from the exit record (reported with the exit, for the manager's usage totals). */
  finalUsage?: { cpuNs?: number; memoryPeakBytes?: number };
  /** An alloc's members, as last read (docs/allocs.md). */
  members?: MemberState[];
  /** The number of the record's last write (record.ts: writes alternate between two files). */
  seq?: number;
  /** Why this reclaimed attempt was evicted (agent/reclaim/): reported with its exit, which is then no failure. */
  evicted?: string;
}

export interface RunnerOptions {
  dataDir: string;
  nodeId: string;
  host: string;
  drivers: { lxc?: Driver; process: Driver };
  cache: PackageCache;
  ports: PortAllocator;
  users: TaskUsers;
  /** The node's devices: a dispatch's assignment becomes the task's variables and device nodes. */
  devices?: AgentDevices;
  log: Logger;
  /** Exited records are kept this long so their exits reach the manager and logs stay readable. */
  retainExitedMs?: number;
}

/** Traversable, not listable: tasks pass through to their own work dir (process driver). */
const PASS_THROUGH_MODE = 0o711;
const PRUNE_EVERY_MS = 60_000;
/** How long a task waits for another task on this node to release its device instances (a stop grace is seconds). */
const DEVICE_RELEASE_WAIT_MS = 60_000;

const DEFAULTS = Object.freeze({ retainExitedMs: 3_600_000 });

/** A running task's cgroup figures and when they were read (the agent's clock, ms). */
export type TaskReading = TaskUsage & { sampledAt: number };

export class TaskRunner extends EventEmitter<{ change: [TaskRecord] }> {
  private readonly records = new Map<string, TaskRecord>();
  /** Record files being written: whether the record changed again since its write began (see persist). */
  private readonly persisting = new Map<TaskRecord, { again: boolean; done: Promise<void> }>();
  private readonly leases = new Map<string, PackageLease>();
  private readonly tasksDir: string;
  private closing = false;
  private lastPrune = 0;
  /** Each running task's latest reading, and when it was taken (sent with reports: rates are worked out between readings). */
  private readonly usage = new Map<string, TaskReading>();
  private readonly retainExitedMs: number;

  constructor(private readonly o: RunnerOptions) {
    super();
    this.tasksDir = join(o.dataDir, "tasks");
    this.retainExitedMs = o.retainExitedMs ?? DEFAULTS.retainExitedMs;
  }

  get(taskId: string): TaskRecord | undefined {
    return this.records.get(taskId);
  }

  /** How many records the next report to the primary carries. */
  get unrecordedCount(): number {
    let n = 0;
    for (const r of this.records.values()) if (!r.exitRecorded) n++;
    return n;
  }

  all(): TaskRecord[] {
    return [...this.records.values()];
  }

  /** Exits the primary has recorded (from its reply to a report). */
  markRecorded(keys: string[]): void {
    for (const k of keys) {
      const i = k.lastIndexOf("#");
      const r = this.records.get(k.slice(0, i));
      if (r && r.state === "exited" && String(r.dispatch.attempt) === k.slice(i + 1)) r.exitRecorded = true;
    }
  }

  /** Every task this agent holds; `forPrimary` leaves out exits the primary has already recorded. */
  report(opts: { forPrimary?: boolean } = {}): ReportedTask[] {
    const records = opts.forPrimary ? this.all().filter((r) => !r.exitRecorded) : this.all();
    return records.map((r) => ({
      taskId: r.dispatch.taskId,
      attempt: r.dispatch.attempt,
      ...(r.dispatch.incarnation !== undefined ? { incarnation: r.dispatch.incarnation } : {}),
      state: r.state,
      ...(r.exit ? { exit: r.exit } : {}),
      ...(Object.keys(r.ports).length ? { ports: r.ports } : {}),
      ...(r.startedAt ? { startedAt: r.startedAt } : {}),
      ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
      ...(r.error ? { error: r.error } : {}),
      ...(r.members ? { members: r.members } : {}),
      ...(r.evicted ? { evicted: r.evicted } : {}),
      ...(this.usage.has(r.dispatch.taskId) && r.state === "running" ? { usage: this.usage.get(r.dispatch.taskId)! } : {}),
      ...(r.state === "exited" && r.finalUsage ? { usage: r.finalUsage } : {}),
    }));
  }

  /** Reads running tasks' usage from their cgroups (tasks without one report none). */
  async refreshUsage(): Promise<void> {
    const running: TaskRecord[] = [];
    for (const r of this.records.values()) {
      if (r.state === "running" && r.handle) running.push(r);
      else this.usage.delete(r.dispatch.taskId);
    }
    // A few reads at a time: one by one took seconds with a thousand tasks.
    let next = 0;
    const worker = async () => {
      while (next < running.length) {
        const r = running[next++]!;
        const info = await this.driverFor(r.dispatch).inspect(r.handle!).catch(() => undefined);
        if (info?.usage) this.usage.set(r.dispatch.taskId, { ...info.usage, sampledAt: Date.now() });
        if (r.handle!.members) await this.readMembers(r);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, running.length) }, worker));
  }

  /** The readings `refreshUsage` took of running tasks (for the usage history; no cgroup is read again). */
  runningUsage(): { taskId: string; attempt: number; startedAt?: number; usage: TaskReading }[] {
    const out: { taskId: string; attempt: number; startedAt?: number; usage: TaskReading }[] = [];
    for (const [taskId, usage] of this.usage) {
      const r = this.records.get(taskId);
      if (r?.state === "running") out.push({ taskId, attempt: r.dispatch.attempt, ...(r.startedAt !== undefined ? { startedAt: r.startedAt } : {}), usage });
    }
    return out;
  }

  /** Directory of a (task, attempt); stable so logs of old attempts stay findable. */
  dirOf(taskId: string, attempt: number): string {
    return join(this.tasksDir, instanceName(taskId, attempt));
  }

  /**
   * Writes the record's file, one write per record at a time (two at once
   * would share its .tmp). A change while a write is in flight is written once
   * after it, with whatever the record holds then: the file always ends at
   * the latest state, and changes in quick succession (a short task's
   * running, then exited) cost one write.
   */
  private persist(r: TaskRecord): Promise<void> {
    const inFlight = this.persisting.get(r);
    if (inFlight) {
      inFlight.again = true;
      return inFlight.done;
    }
    const entry = { again: false, done: Promise.resolve() };
    entry.done = (async () => {
      try {
        do {
          entry.again = false;
          // Over the older of the record's two files (record.ts): the newer one stays whole until this write is.
          r.seq = r.seq === undefined ? 0 : r.seq + 1;
          await writeFile(recordFileOf(r.dir, r.seq), JSON.stringify(r), { mode: 0o600 });
        } while (entry.again);
      } finally {
        this.persisting.delete(r);
      }
    })();
    this.persisting.set(r, entry);
    return entry.done;
  }

  private changed(r: TaskRecord): void {
    this.persist(r).catch((e) => this.o.log.warn({ err: e, task: r.dispatch.taskId }, "cannot persist task record"));
    this.emit("change", r);
  }

  /** Refuses further dispatches (the agent is shutting down). */
  close(): void {
    this.closing = true;
  }

  async start(d: TaskDispatch): Promise<{ created: boolean }> {
    if (this.closing) throw new UnavailableError("the agent is shutting down");
    const cur = this.records.get(d.taskId);
    // Orders are idempotent by (task, attempt) within one incarnation of the task; an order without one (an older primary) is taken as the same.
    const sameTask = cur !== undefined && (cur.dispatch.incarnation === undefined || d.incarnation === undefined || cur.dispatch.incarnation === d.incarnation);
    if (sameTask && cur.dispatch.attempt >= d.attempt) return { created: false };
    if (cur && cur.state !== "exited") await this.stop(d.taskId, cur.dispatch.attempt, 2000);
    const dir = this.dirOf(d.taskId, d.attempt);
    // A new task under an old id and attempt (its job was submitted again): the old one's directory goes, so its records are never read as the new one's.
    if (cur && !sameTask && cur.dir === dir) await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await chmod(dir, PASS_THROUGH_MODE);
    const r: TaskRecord = { dispatch: d, state: "starting", dir, ports: {} };
    this.records.set(d.taskId, r);
    await this.persist(r);
    this.emit("change", r);
    void this.launch(r);
    return { created: true };
  }

  private driverFor(d: TaskDispatch): Driver {
    const want = d.spec.isolation;
    // Allocs run under the process driver only (docs/allocs.md).
    if (want === "process" || d.spec.alloc) return this.o.drivers.process;
    if (this.o.drivers.lxc) return this.o.drivers.lxc;
    return this.o.drivers.process;
  }

  private async launch(r: TaskRecord): Promise<void> {
    const d = r.dispatch;
    try {
      let packageDir: string | undefined;
      if (d.packageDigest) {
        const lease = await this.o.cache.acquire(d.packageDigest);
        this.leases.set(leaseKey(d), lease);
        packageDir = lease.path;
      }
      for (const p of d.spec.ports) {
        if (p.static) {
          this.o.ports.reserve(p.static);
          r.ports[p.name] = p.static;
        } else r.ports[p.name] = await this.o.ports.allocate();
      }
      await this.devicesReleased(r);
      if (r.stopRequested) throw new ConflictError("stopped before start");
      r.user = this.o.users.acquire(d);
      const env = this.environmentOf(r);
      const devicePaths = this.deviceLaunchOf(d).paths;
      const driver = this.driverFor(d);
      r.handle = await driver.start({
        taskId: d.taskId,
        attempt: d.attempt,
        command: d.spec.command,
        ...(packageDir ? { packageDir } : {}),
        taskDir: r.dir,
        env,
        resources: d.spec.resources,
        ...(r.user ? { user: r.user } : {}),
        ...(d.spec.alloc ? { members: d.spec.alloc.tasks.map((m) => ({ name: m.name, command: m.command, env: m.env, ...(m.resources ? { resources: m.resources } : {}) })) } : {}),
        ...(devicePaths.length > 0 ? { devicePaths } : {}),
      });
      if (r.handle.members) r.members = r.handle.members.map((m) => ({ name: m.name, state: "running" }));
      r.state = "running";
      r.startedAt = r.handle.startedAt;
      this.changed(r);
      this.o.log.info({ task: d.taskId, attempt: d.attempt, driver: driver.name, pid: r.handle.pid }, "task started");
      if (r.stopRequested) void driver.stop(r.handle, 0);
      await this.awaitExit(r, driver);
    } catch (e) {
      const err = toTorcaError(e);
      this.o.log.warn({ task: d.taskId, attempt: d.attempt, err: err.message }, "task failed to start");
      this.finish(r, { exitCode: null, signal: null, oomKilled: false, reason: r.stopRequested ? "stopped before start" : `failed to start: ${err.message}` }, err.message);
      this.releaseUser(r);
    }
  }

  /**
   * Waits until no other live task on this node holds an instance of a
   * non-shareable device this task was given: a preemption's victim keeps its
   * device through its stop grace, and two tasks on one GPU can fail each
   * other (its memory). Gives up after DEVICE_RELEASE_WAIT_MS, which fails the
   * start (the primary then places the task again).
   */
  private async devicesReleased(r: TaskRecord): Promise<void> {
    const mine = r.dispatch.devices;
    const devices = this.o.devices;
    if (mine === undefined || mine.length === 0 || devices === undefined) return;
    const holder = () => [...this.records.values()].find((o) => o !== r && o.state !== "exited" && o.dispatch.devices !== undefined && devices.overlap(mine, o.dispatch.devices));
    const deadline = Date.now() + DEVICE_RELEASE_WAIT_MS;
    let logged = false;
    for (let h = holder(); h !== undefined; h = holder()) {
      if (r.stopRequested) return;
      if (Date.now() >= deadline) throw new ConflictError(`its devices are still held by ${h.dispatch.taskId}#${h.dispatch.attempt} after ${DEVICE_RELEASE_WAIT_MS / 1000} s`);
      if (!logged) this.o.log.info({ task: r.dispatch.taskId, attempt: r.dispatch.attempt, holder: h.dispatch.taskId }, "waiting for a device instance to be released");
      logged = true;
      // A holder's exit is a change; the timeout bounds a wait that misses one.
      const done = new AbortController();
      const settled = (p: Promise<unknown>) => p.catch(() => undefined);
      await Promise.race([settled(once(this, "change", { signal: done.signal })), settled(sleep(1000, undefined, { signal: done.signal }))]);
      done.abort();
    }
  }

  /** The task's environment: its spec's, and where it runs (ports are allocated by then). */
  private environmentOf(r: TaskRecord): Record<string, string> {
    const d = r.dispatch;
    const env: Record<string, string> = {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      ...d.spec.env,
      TORCA_JOB: d.jobId,
      TORCA_TASK: d.taskId,
      TORCA_INDEX: String(d.index),
      TORCA_ATTEMPT: String(d.attempt),
      TORCA_NODE: this.o.nodeId,
      TORCA_HOST: this.o.host,
    };
    for (const [name, port] of Object.entries(r.ports)) env[`TORCA_PORT_${name.toUpperCase()}`] = String(port);
    return { ...env, ...this.deviceLaunchOf(d).env };
  }

  /** The assigned devices' variables and nodes (none without an assignment); unknown devices fail the start. */
  private deviceLaunchOf(d: TaskDispatch): DeviceLaunch {
    if (d.devices === undefined || d.devices.length === 0) return { env: {}, paths: [] };
    if (this.o.devices === undefined) throw new DriverError("this node offers no devices");
    return this.o.devices.launchOf(d.devices);
  }

  /** How to run `start.command` beside the running task (torca exec): its driver, user, environment and cwd. */
  execCommand(taskId: string, start: ExecStart): ExecCommand {
    const r = this.records.get(taskId);
    if (!r) throw new NotFoundError("task", taskId);
    if (r.state !== "running" || !r.handle) throw new ConflictError(`task ${taskId} is ${r.state} here, not running`);
    const lease = this.leases.get(leaseKey(r.dispatch));
    const cmd = this.driverFor(r.dispatch).execCommand(r.handle, { command: start.command, env: this.environmentOf(r), ...(lease ? { packageDir: lease.path } : {}), ...(r.user ? { user: r.user } : {}) });
    return start.tty ? underTerminal(cmd, start) : cmd;
  }

  private async awaitExit(r: TaskRecord, driver: Driver): Promise<void> {
    const exit = await driver.wait(r.handle!);
    if (r.handle!.members) await this.readMembers(r);
    const final = await driver.finalUsage?.(r.handle!).catch(() => undefined);
    if (final && (final.cpuNs !== undefined || final.memoryPeakBytes !== undefined)) {
      r.finalUsage = { ...(final.cpuNs !== undefined ? { cpuNs: final.cpuNs } : {}), ...(final.memoryPeakBytes !== undefined ? { memoryPeakBytes: final.memoryPeakBytes } : {}) };
    }
    this.finish(r, exit);
    await driver.destroy(r.handle!).catch((e) => this.o.log.warn({ err: e }, "driver destroy failed"));
    // Only now: destroy killed what the task left running under its uid.
    this.releaseUser(r);
  }

  /** An alloc's member states from the driver; a change is persisted and reported. */
  private async readMembers(r: TaskRecord): Promise<void> {
    const members = await this.driverFor(r.dispatch).memberStates?.(r.handle!).catch(() => undefined);
    if (!members || JSON.stringify(members) === JSON.stringify(r.members)) return;
    r.members = members;
    if (r.state !== "exited") this.changed(r);
  }

  private releaseUser(r: TaskRecord): void {
    if (r.user) this.o.users.release(r.user);
  }

  private finish(r: TaskRecord, exit: ExitInfo, error?: string): void {
    if (r.state === "exited") return;
    r.state = "exited";
    r.exit = exit;
    r.finishedAt = Date.now();
    if (error) r.error = error;
    for (const [, port] of Object.entries(r.ports)) this.o.ports.release(port);
    const key = leaseKey(r.dispatch);
    this.leases.get(key)?.release();
    this.leases.delete(key);
    this.o.log.info({ task: r.dispatch.taskId, attempt: r.dispatch.attempt, reason: exit.reason }, "task exited");
    this.changed(r);
  }

  /** Sends a signal to a running attempt; false when that attempt is not running here. */
  async signal(taskId: string, attempt: number, sig: NodeJS.Signals): Promise<boolean> {
    const r = this.records.get(taskId);
    if (!r || r.dispatch.attempt !== attempt || r.state !== "running" || !r.handle) return false;
    await this.driverFor(r.dispatch).signal(r.handle, sig);
    return true;
  }

  async stop(taskId: string, attempt: number | undefined, graceMs: number): Promise<boolean> {
    const r = this.records.get(taskId);
    if (!r || (attempt !== undefined && r.dispatch.attempt !== attempt)) return false;
    if (r.state === "exited") return true;
    r.stopRequested = true;
    if (!r.handle) return true;
    await this.driverFor(r.dispatch).stop(r.handle, graceMs);
    return true;
  }

  /** Stops a reclaimed attempt to give its owners back their reservation; its exit is reported as an eviction. */
  async evict(taskId: string, attempt: number, why: string, graceMs: number): Promise<boolean> {
    const r = this.records.get(taskId);
    if (!r || r.dispatch.attempt !== attempt || r.state === "exited") return false;
    r.evicted = why;
    return this.stop(taskId, attempt, graceMs);
  }

  /** After an agent restart: re-adopt running tasks and record exits that happened meanwhile. */
  async recover(): Promise<void> {
    await mkdir(this.tasksDir, { recursive: true });
    for (const d of [this.o.dataDir, this.tasksDir]) await chmod(d, PASS_THROUGH_MODE);
    await this.warnIfUnreachable(dirname(this.o.dataDir));
    for (const name of await readdir(this.tasksDir)) {
      const r = await readRecord(join(this.tasksDir, name), this.o.log);
      if (!r) continue;
      // Read from disk, the record has been written at least once: the next write goes to the other file.
      r.seq ??= 0;
      const prev = this.records.get(r.dispatch.taskId);
      if (prev && prev.dispatch.attempt > r.dispatch.attempt) continue;
      if (r.state === "exited") {
        this.records.set(r.dispatch.taskId, r);
        continue;
      }
      this.records.set(r.dispatch.taskId, r);
      for (const p of Object.values(r.ports)) this.o.ports.reserve(p);
      if (r.user) this.o.users.hold(r.user);
      if (!r.handle) {
        this.finish(r, { exitCode: null, signal: null, oomKilled: false, reason: "agent restarted before the task started" });
        this.releaseUser(r);
        continue;
      }
      const driver = this.driverFor(r.dispatch);
      const status = await driver.recover(r.handle);
      this.o.log.info({ task: r.dispatch.taskId, attempt: r.dispatch.attempt, status }, "recovered task");
      if (status === "gone") {
        this.finish(r, { exitCode: null, signal: null, oomKilled: false, reason: "task vanished while the agent was down" });
        this.releaseUser(r);
        continue;
      }
      if (r.dispatch.packageDigest) {
        this.o.cache
          .acquire(r.dispatch.packageDigest)
          .then((lease) => this.leases.set(leaseKey(r.dispatch), lease))
          .catch((e) => this.o.log.warn({ task: r.dispatch.taskId, err: e }, "cannot pin the running task's package; the cache may evict it"));
      }
      void this.awaitExit(r, driver).catch((e) => this.o.log.warn({ err: e }, "wait after recovery failed"));
    }
    await this.prune();
  }

  /**
   * Tasks under their own uids reach their work dir and package by path: every
   * directory above the data dir must let others pass (o+x). The agent does
   * not change directories it does not own; it says which one is in the way.
   */
  private async warnIfUnreachable(dir: string): Promise<void> {
    if (!isRoot()) return;
    for (let d = dir; ; d = dirname(d)) {
      const st = await stat(d).catch(() => undefined);
      if (st && (st.mode & 0o001) === 0) {
        this.o.log.warn({ dir: d, mode: (st.mode & 0o777).toString(8) }, `process tasks cannot reach their work dir or package: ${d} does not let others pass (chmod o+x ${d}, or put agent.dataDir elsewhere)`);
        return;
      }
      if (d === dirname(d)) return;
    }
  }

  /**
   * Removes task directories (record, logs) whose attempt exited longer ago
   * than the retention, including older attempts no longer in the table.
   * Scans the disk, so it runs at most once a minute however often it is called.
   */
  async prune(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    const retain = this.retainExitedMs;
    for (const name of await readdir(this.tasksDir).catch(() => [] as string[])) {
      const dir = join(this.tasksDir, name);
      const onDisk = await readRecord(dir, this.o.log);
      if (!onDisk) continue;
      const cur = this.records.get(onDisk.dispatch.taskId);
      const isCurrent = cur?.dispatch.attempt === onDisk.dispatch.attempt;
      const r = isCurrent ? cur : onDisk;
      if (r.state !== "exited" || !r.finishedAt || now - r.finishedAt <= retain) continue;
      if (isCurrent) this.records.delete(r.dispatch.taskId);
      await rm(dir, { recursive: true, force: true });
    }
  }
}
