/**
 * The `process` driver: the task runs on the host as a plain process group, under
 * the host-side wrapper. As root with writable cgroup v1 it gets its own
 * memory/pids/cpu/cpuacct cgroup (limits, usage, OOM detection), taken from a
 * pool of emptied ones (cgroup-pool.ts); otherwise no limits at all
 * (fingerprint says so: process.cgroups = none).
 */
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ExitInfo } from "../../src/common/types.js";
import { DEFAULT_PIDS_MAX, DEFAULT_TASK_PATH, type Driver, type FinalUsage, type FingerprintResult, type MemberState, type TaskHandle, type TaskLaunch, type TaskUsage, type WaitOptions } from "./driver.js";
import { ProcessAllocs } from "./alloc.js";
import { CgroupV1 } from "./cgroup.js";
import { cgroupPoolFor, drainCgroupPools, type CgroupPool } from "./cgroup-pool.js";
import { hostAttributes } from "./fingerprint.js";
import { checkLaunch, resolveCommand, taskEnv } from "./launch.js";
import { prepareWorkDir, terminateWithGrace } from "./lifecycle.js";
import { readExitRecord } from "./exit-record.js";
import { PROCESS_EXEC_SH, type ExecCommand, type ExecContext } from "./exec.js";
import { childrenOf, killQuietly } from "./procfs.js";
import { hasExitFile, isWrapperAlive, spawnWrapper, waitForExitRecord } from "./wrapper.js";

export interface ProcessDriverOptions {
  /** Where task cgroups go; default /sys/fs/cgroup/<ctrl>/torca/<name>. */
  cgroup?: CgroupV1;
  /** false: never use cgroups. Default: use them when running as root and they are writable. */
  useCgroups?: boolean;
}

export class ProcessDriver implements Driver {
  readonly name = "process" as const;
  private readonly cgroup: CgroupV1;
  private readonly useCgroups: boolean;
  private cgroupCheck: Promise<{ ok: boolean; reason?: string }> | undefined;
  /** Launches with `members` and handles with `members` (allocs) are handled there. */
  private readonly allocs: ProcessAllocs;

  constructor(opts: ProcessDriverOptions = {}) {
    this.cgroup = opts.cgroup ?? new CgroupV1();
    this.useCgroups = opts.useCgroups ?? true;
    this.allocs = new ProcessAllocs(this, this.cgroup, () => this.cgroupsUsable());
  }

  private cgroupsUsable(): Promise<{ ok: boolean; reason?: string }> {
    if (!this.useCgroups) return Promise.resolve({ ok: false, reason: "disabled by configuration" });
    this.cgroupCheck ??= this.cgroup.usable();
    return this.cgroupCheck;
  }

  async fingerprint(): Promise<FingerprintResult> {
    const cg = await this.cgroupsUsable();
    const attributes: Record<string, string> = { ...hostAttributes(), "driver.process": "1", "driver.process.cgroups": cg.ok ? "v1" : "none" };
    if (!cg.ok && cg.reason) attributes["driver.process.cgroups.reason"] = `no resource limits: ${cg.reason}`;
    return { available: true, attributes };
  }

  async start(l: TaskLaunch): Promise<TaskHandle> {
    if (l.members) return this.allocs.start(l);
    await checkLaunch(l);
    const command = resolveCommand(l, l.packageDir);
    const workDir = await prepareWorkDir(l.taskDir, l.user);
    const cg = await this.cgroupsUsable();
    const startedAt = Date.now();
    let name: string | undefined;
    let pid: number;
    try {
      const limits = { cpuCores: l.resources.cpu, memoryBytes: l.resources.memory, pidsMax: l.pidsMax ?? DEFAULT_PIDS_MAX };
      // An alloc member's cgroup is a child of its alloc's (alloc.ts), never a pooled one; the pool removes it on release.
      if (cg.ok && l.cgroupName !== undefined) await this.cgroup.create((name = l.cgroupName), limits);
      else if (cg.ok) name = await this.cgroupPool(l.taskDir).acquire(limits);
      pid = await spawnWrapper(l.taskDir, {
        kind: "process",
        command,
        cwd: l.packageDir ?? workDir,
        env: taskEnv(l),
        ...(name ? { cgroup: { root: this.cgroup.root, relative: this.cgroup.relative(name) } } : {}),
        ...(l.user ? { user: l.user } : {}),
      });
    } catch (e) {
      // Nothing started: the cgroup is empty, back to the pool.
      if (name) await this.cgroupPool(l.taskDir).release(name).catch(() => undefined);
      throw e;
    }
    const handle: TaskHandle = { driver: "process", taskId: l.taskId, attempt: l.attempt, taskDir: l.taskDir, pid, startedAt };
    if (name) handle.cgroup = name;
    return handle;
  }

  async close(): Promise<void> {
    await drainCgroupPools(this.cgroup);
  }

  /** Task cgroups are pooled per agent: its tasks dir (the parent of every task dir) is the pool's scope. */
  private cgroupPool(taskDir: string): CgroupPool {
    return cgroupPoolFor(this.cgroup, dirname(taskDir));
  }

  private async cgroupBusy(h: TaskHandle): Promise<boolean> {
    return h.cgroup !== undefined && (await this.cgroup.procs(h.cgroup)).length > 0;
  }

  wait(h: TaskHandle, opts: WaitOptions = {}): Promise<ExitInfo> {
    if (h.members) return this.allocs.wait(h, opts);
    return waitForExitRecord({
      taskDir: h.taskDir,
      wrapperPid: h.pid,
      signal: opts.signal,
      // A killed wrapper leaves the task (own session) running; its cgroup tells when it is done.
      stillRunningWithoutWrapper: () => this.cgroupBusy(h),
    });
  }

  /** The task's pid (= its process group): the wrapper's only child. Bounded wait right after start. */
  private async taskPid(h: TaskHandle): Promise<number | undefined> {
    for (let i = 0; i < 100; i++) {
      const [child] = await childrenOf(h.pid);
      if (child !== undefined) return child;
      if (!(await isWrapperAlive(h.pid, h.taskDir))) return undefined;
      await sleep(10);
    }
    return undefined;
  }

  private async deliver(h: TaskHandle, sig: NodeJS.Signals): Promise<void> {
    const pid = await this.taskPid(h);
    if (pid !== undefined) killQuietly(-pid, sig);
    // SIGKILL also reaches processes that left the group (setsid, daemonized) but not the cgroup.
    if (sig === "SIGKILL" && h.cgroup) for (const p of await this.cgroup.procs(h.cgroup)) killQuietly(p, sig);
  }

  async stop(h: TaskHandle, graceMs: number): Promise<void> {
    if (h.members) return this.allocs.stop(h, graceMs);
    if (await hasExitFile(h.taskDir)) return;
    await terminateWithGrace((sig) => this.deliver(h, sig), this.wait(h), graceMs);
  }

  async signal(h: TaskHandle, sig: NodeJS.Signals): Promise<void> {
    if (h.members) return this.allocs.signal(h, sig);
    await this.deliver(h, sig);
  }

  async inspect(h: TaskHandle): Promise<{ running: boolean; usage?: TaskUsage }> {
    if (h.members) return this.allocs.inspect(h);
    const running = !(await hasExitFile(h.taskDir)) && ((await isWrapperAlive(h.pid, h.taskDir)) || (await this.cgroupBusy(h)));
    const usage = h.cgroup ? await this.cgroup.usage(h.cgroup) : undefined;
    return usage ? { running, usage } : { running };
  }

  /** Final cgroup figures (peak memory, CPU time, OOM kills) from the exit record; undefined while running. */
  async finalUsage(h: TaskHandle): Promise<FinalUsage | undefined> {
    if (h.members) return this.allocs.finalUsage(h);
    return (await readExitRecord(h.taskDir))?.usage;
  }

  memberStates(h: TaskHandle): Promise<MemberState[]> {
    return this.allocs.memberStates(h);
  }

  async recover(h: TaskHandle): Promise<"running" | "exited" | "gone"> {
    if (h.members) return this.allocs.recover(h);
    if (await hasExitFile(h.taskDir)) return "exited";
    if ((await isWrapperAlive(h.pid, h.taskDir)) || (await this.cgroupBusy(h))) return "running";
    return "gone";
  }

  execCommand(h: TaskHandle, x: ExecContext): ExecCommand {
    const cwd = x.packageDir ?? join(h.taskDir, "work");
    const u = x.user;
    const cgroup = h.cgroup ? [this.cgroup.root, this.cgroup.relative(h.cgroup)] : ["", ""];
    return { file: "/bin/sh", args: ["-c", PROCESS_EXEC_SH, "torca-exec", ...cgroup, u ? String(u.uid) : "", u ? String(u.gid) : "", cwd, ...x.command], env: { PATH: DEFAULT_TASK_PATH, ...x.env } };
  }

  async destroy(h: TaskHandle): Promise<void> {
    if (h.members) return this.allocs.destroy(h);
    if ((await this.recover(h)) === "running") await this.stop(h, 0);
    if (!h.cgroup) return;
    // Leftovers the task forked off before it exited would keep the cgroup busy.
    for (let i = 0; i < 20; i++) {
      const procs = await this.cgroup.procs(h.cgroup);
      if (procs.length === 0) break;
      for (const p of procs) killQuietly(p, "SIGKILL");
      await sleep(25);
    }
    await this.cgroupPool(h.taskDir).release(h.cgroup);
  }
}
