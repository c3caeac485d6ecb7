/**
 * The `lxc` driver: each task attempt is an application container run by
 * `lxc-execute` under the host-side wrapper (docs/lxc-and-zookeeper.md, LXC 1–7), with its own pid,
 * uts and mount namespaces, a read-only rootfs, dropped capabilities, a
 * non-root uid by default and cgroup v1 limits (cpu quota, memory(+memsw), pids).
 *
 * Directories (all configurable): <baseDir>/rootfs (shared read-only rootfs,
 * created on first use), <baseDir>/run (the -P lxc path), <baseDir>/hooks/stop.sh.
 * Cgroups: <cgroupRoot>/<ctrl>/torca/<name> for the container, torca-monitor/<name>
 * for lxc-execute itself; LXC creates and removes both.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { ExitInfo } from "../../src/common/types.js";
import { CgroupV1 } from "./cgroup.js";
import { DEFAULT_PIDS_MAX, DEFAULT_TASK_PATH, type Driver, type FinalUsage, type FingerprintResult, type TaskHandle, type TaskLaunch, type TaskUsage, type WaitOptions } from "./driver.js";
import { CGSTATS_FILE, readExitRecord } from "./exit-record.js";
import { findExecutable, firstLineOf, hostAttributes, isRoot } from "./fingerprint.js";
import { checkLaunch, resolveCommand, taskEnv } from "./launch.js";
import { KILL_SETTLE_MS, prepareWorkDir, terminateWithGrace } from "./lifecycle.js";
import { deviceNodes, ensureRootfs, ensureStopHook, PKG_MOUNT, renderContainerConfig, stopHookScript, WORK_MOUNT } from "./lxc-config.js";
import { LXC_EXEC_SH, type ExecCommand, type ExecContext } from "./exec.js";
import { hostnameOf, instanceName } from "./names.js";
import { innermostPidOf, killQuietly } from "./procfs.js";
import { hasExitFile, isWrapperAlive, spawnWrapper, TOOLS_PATH, waitForExitRecord } from "./wrapper.js";

const execFileAsync = promisify(execFile);

export const DEFAULT_LXC_BASE_DIR = "/var/lib/torca/lxc";
const CONFIG_FILE = "lxc.conf";

export interface LxcDriverOptions {
  /** Default /var/lib/torca/lxc. */
  baseDir?: string;
  /** Shared read-only rootfs; default <baseDir>/rootfs. */
  rootfsDir?: string;
  /** The lxc-execute -P dir; default <baseDir>/run. */
  lxcPath?: string;
  /** Default <cgroupRoot>/<ctrl>/torca. */
  cgroup?: CgroupV1;
  /** Default 1000:1000. */
  defaultUser?: { uid: number; gid: number };
  /** Size of the task's private /tmp (tmpfs, charged to its memory); default 64 MiB. */
  tmpSizeBytes?: number;
}

export class LxcDriver implements Driver {
  readonly name = "lxc" as const;
  readonly rootfsDir: string;
  readonly lxcPath: string;
  readonly stopHookPath: string;
  private readonly cgroup: CgroupV1;
  private readonly defaultUser: { uid: number; gid: number };
  private readonly tmpSizeBytes: number;
  private prepared: Promise<void> | undefined;

  constructor(opts: LxcDriverOptions = {}) {
    const base = opts.baseDir ?? DEFAULT_LXC_BASE_DIR;
    this.rootfsDir = opts.rootfsDir ?? join(base, "rootfs");
    this.lxcPath = opts.lxcPath ?? join(base, "run");
    this.stopHookPath = join(base, "hooks", "stop.sh");
    this.cgroup = opts.cgroup ?? new CgroupV1();
    this.defaultUser = opts.defaultUser ?? { uid: 1000, gid: 1000 };
    this.tmpSizeBytes = opts.tmpSizeBytes ?? 64 * 1024 * 1024;
  }

  /** Creates the rootfs, the -P dir and the stop hook (once per driver instance; also done by the first start()). */
  prepare(): Promise<void> {
    this.prepared ??= (async () => {
      await ensureRootfs(this.rootfsDir);
      await Promise.all([mkdir(this.lxcPath, { recursive: true }), mkdir(dirname(this.stopHookPath), { recursive: true })]);
      await ensureStopHook(this.stopHookPath, stopHookScript(this.cgroup));
    })().catch((e: unknown) => {
      this.prepared = undefined;
      throw e;
    });
    return this.prepared;
  }

  async fingerprint(): Promise<FingerprintResult> {
    const attributes: Record<string, string> = { ...hostAttributes(), "driver.lxc": "0" };
    const exe = await findExecutable("lxc-execute");
    if (!exe) return { available: false, reason: "lxc-execute not found (apt-get install lxc)", attributes };
    const version = await firstLineOf(exe, ["--version"]);
    if (version) attributes["lxc.version"] = version;
    if (!isRoot()) return { available: false, reason: "the lxc driver needs root", attributes };
    const cg = await this.cgroup.usable();
    if (!cg.ok) return { available: false, reason: cg.reason ?? "cgroups not usable", attributes };
    attributes["driver.lxc"] = "1";
    attributes["lxc.cgroups"] = "v1";
    attributes["lxc.memsw"] = (await this.cgroup.hasMemsw()) ? "1" : "0";
    return { available: true, attributes };
  }

  async start(l: TaskLaunch): Promise<TaskHandle> {
    await checkLaunch(l);
    await this.prepare();
    const user = l.user ?? this.defaultUser;
    const command = resolveCommand(l, l.packageDir === undefined ? undefined : PKG_MOUNT);
    const workDir = await prepareWorkDir(l.taskDir, user);
    const name = instanceName(l.taskId, l.attempt);
    const configPath = join(l.taskDir, CONFIG_FILE);
    await writeFile(
      configPath,
      renderContainerConfig({
        name,
        hostname: hostnameOf(l.taskId),
        rootfs: this.rootfsDir,
        stopHook: this.stopHookPath,
        cgroupParent: this.cgroup.parent,
        packageDir: l.packageDir,
        workDir,
        env: taskEnv(l),
        uid: user.uid,
        gid: user.gid,
        network: l.network ?? "host",
        cpuCores: l.resources.cpu,
        memoryBytes: l.resources.memory,
        memsw: await this.cgroup.hasMemsw(),
        pidsMax: l.pidsMax ?? DEFAULT_PIDS_MAX,
        tmpSizeBytes: this.tmpSizeBytes,
        ...(l.devicePaths?.length ? { devices: await deviceNodes(l.devicePaths) } : {}),
      }),
      { mode: 0o600 },
    );
    const startedAt = Date.now();
    const pid = await spawnWrapper(l.taskDir, { kind: "lxc", args: ["-n", name, "-P", this.lxcPath, "-f", configPath, "--", ...command] });
    const handle: TaskHandle = { driver: "lxc", taskId: l.taskId, attempt: l.attempt, taskDir: l.taskDir, pid, containerName: name, lxcPath: this.lxcPath, startedAt, cgroup: name };
    return handle;
  }

  private cgroupName(h: TaskHandle): string {
    return h.cgroup ?? h.containerName ?? instanceName(h.taskId, h.attempt);
  }

  private lxcArgs(h: TaskHandle): string[] {
    return ["-n", h.containerName ?? instanceName(h.taskId, h.attempt), "-P", h.lxcPath ?? this.lxcPath];
  }

  /** The container's processes (host pids) except its init (pid 1 inside). */
  private async taskProcesses(h: TaskHandle): Promise<number[]> {
    const procs = await this.cgroup.procs(this.cgroupName(h));
    const inner = await Promise.all(procs.map((p) => innermostPidOf(p)));
    return procs.filter((_, i) => inner[i] !== undefined && inner[i] !== 1);
  }

  private async containerState(h: TaskHandle): Promise<string | undefined> {
    try {
      const { stdout } = await execFileAsync("lxc-info", [...this.lxcArgs(h), "-s", "-H"], { timeout: 10_000, env: { PATH: TOOLS_PATH } });
      return stdout.trim() || undefined;
    } catch {
      return undefined;
    }
  }

  private async containerAlive(h: TaskHandle): Promise<boolean> {
    if ((await this.cgroup.procs(this.cgroupName(h))).length > 0) return true;
    return (await this.containerState(h)) === "RUNNING";
  }

  async wait(h: TaskHandle, opts: WaitOptions = {}): Promise<ExitInfo> {
    const info = await waitForExitRecord({
      taskDir: h.taskDir,
      wrapperPid: h.pid,
      signal: opts.signal,
      // A killed wrapper leaves the container running (lxc-execute is reparented).
      stillRunningWithoutWrapper: () => this.containerAlive(h),
    });
    return this.explainStartFailure(h, info);
  }

  /** lxc-execute exits 1 both for a task's `exit 1` and for a container that never started; its own error lines tell them apart. */
  private async explainStartFailure(h: TaskHandle, info: ExitInfo): Promise<ExitInfo> {
    if (info.exitCode !== 1) return info;
    try {
      await stat(join(h.taskDir, CGSTATS_FILE));
      return info; // the stop hook ran: the container did run
    } catch {
      // no figures: it may never have started
    }
    let tail: string;
    try {
      tail = (await readFile(join(h.taskDir, "stderr"), "utf8")).slice(-4096);
    } catch {
      return info;
    }
    const lxcLines = tail.split("\n").filter((line) => line.startsWith("lxc-execute: "));
    if (lxcLines.length === 0) return info;
    return { ...info, reason: `container failed to start: ${lxcLines[0]}` };
  }

  private async deliver(h: TaskHandle, sig: NodeJS.Signals): Promise<void> {
    for (const p of await this.taskProcesses(h)) killQuietly(p, sig);
  }

  /**
   * lxc-stop would SIGKILL ~1 s after SIGTERM whatever -t says (docs/lxc-and-zookeeper.md, LXC 6), so the
   * signals go to the task's processes directly; when they are dead, the
   * container's init exits with the task's status. lxc-stop -k only as a last resort
   * (it makes lxc-execute exit 1).
   */
  async stop(h: TaskHandle, graceMs: number): Promise<void> {
    if (await hasExitFile(h.taskDir)) return;
    const exited = this.wait(h);
    await terminateWithGrace((sig) => this.deliver(h, sig), exited, graceMs);
    if (await hasExitFile(h.taskDir)) return;
    await execFileAsync("lxc-stop", [...this.lxcArgs(h), "-k"], { timeout: 10_000, env: { PATH: TOOLS_PATH } }).catch(() => undefined);
    await Promise.race([exited, sleep(KILL_SETTLE_MS)]);
  }

  /** Sends `sig` to every process of the container except its init. */
  async signal(h: TaskHandle, sig: NodeJS.Signals): Promise<void> {
    await this.deliver(h, sig);
  }

  async inspect(h: TaskHandle): Promise<{ running: boolean; usage?: TaskUsage }> {
    const running = !(await hasExitFile(h.taskDir)) && ((await isWrapperAlive(h.pid, h.taskDir)) || (await this.containerAlive(h)));
    const usage = running ? await this.cgroup.usage(this.cgroupName(h)) : undefined;
    return usage ? { running, usage } : { running };
  }

  /** Final cgroup figures (peak memory, CPU time, OOM kills) from the exit record; undefined while running. */
  async finalUsage(h: TaskHandle): Promise<FinalUsage | undefined> {
    return (await readExitRecord(h.taskDir))?.usage;
  }

  async recover(h: TaskHandle): Promise<"running" | "exited" | "gone"> {
    if (await hasExitFile(h.taskDir)) return "exited";
    if (await isWrapperAlive(h.pid, h.taskDir)) return "running";
    if ((await this.containerState(h)) === "RUNNING") return "running";
    // The wrapper may have written `exit` between the two checks.
    return (await hasExitFile(h.taskDir)) ? "exited" : "gone";
  }

  /** lxc-attach into the container's namespaces, with its environment only, as the task's user, in its cwd. */
  execCommand(h: TaskHandle, x: ExecContext): ExecCommand {
    const user = x.user ?? this.defaultUser;
    const env = Object.entries({ PATH: DEFAULT_TASK_PATH, ...x.env }).flatMap(([k, v]) => ["-v", `${k}=${v}`]);
    const cwd = x.packageDir ? PKG_MOUNT : WORK_MOUNT;
    return {
      file: "lxc-attach",
      args: [...this.lxcArgs(h), "--clear-env", ...env, "-u", String(user.uid), "-g", String(user.gid), "--", "/bin/sh", "-c", LXC_EXEC_SH, "torca-exec", cwd, ...x.command],
      env: { PATH: TOOLS_PATH },
    };
  }

  /** Names of the running containers in this driver's lxc path (lxc-ls --running), e.g. to find orphans after a restart. */
  async runningContainers(): Promise<string[]> {
    const { stdout } = await execFileAsync("lxc-ls", ["-P", this.lxcPath, "--running", "-1"], { timeout: 10_000, env: { PATH: TOOLS_PATH } });
    return stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  }

  async destroy(h: TaskHandle): Promise<void> {
    if ((await this.recover(h)) === "running") await this.stop(h, 0);
    const name = this.cgroupName(h);
    // LXC removes both cgroups itself; these are for a monitor that died first.
    await this.cgroup.remove(name);
    await new CgroupV1(this.cgroup.root, `${this.cgroup.parent}-monitor`).remove(name);
    await rm(join(h.lxcPath ?? this.lxcPath, h.containerName ?? name), { recursive: true, force: true });
  }
}
