/**
 * cgroup v1 access for task cgroups at <root>/<controller>/<parent>/<name>.
 *
 * This host has cgroup v1 with `cpu` and `cpuacct` as separate hierarchies
 * (docs/lxc-and-zookeeper.md, LXC 4), so a task's cgroup is one dir per controller. The process driver
 * creates these dirs itself; LXC creates them for containers (lxc.cgroup.dir.container)
 * and removes them when the container exits.
 */
import { readFileSync } from "node:fs";
import { access, constants as fsConstants, mkdir, readdir, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CFS_PERIOD_US, type TaskUsage } from "./driver.js";
import { DriverError } from "../../src/common/errors.js";

/** The controllers a task's limits and usage need. */
export const TASK_CONTROLLERS = ["memory", "pids", "cpu", "cpuacct"] as const;
export type TaskController = (typeof TASK_CONTROLLERS)[number];

export interface CgroupLimits {
  /** Cores; 0 = no quota. */
  cpuCores: number;
  /** Bytes; 0 = no limit. */
  memoryBytes: number;
  pidsMax: number;
}

/** What a new cgroup starts with: no cpu quota, no memory limit, and a pids limit always written (NaN equals nothing). */
const FRESH_CGROUP: CgroupLimits = { cpuCores: 0, memoryBytes: 0, pidsMax: Number.NaN };

export const DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup";
/** The kernel's cpu.shares of a new cgroup. */
export const DEFAULT_CPU_SHARES = 1024;
export const DEFAULT_CGROUP_PARENT = "torca";

/** CFS quota (µs per CFS_PERIOD_US) for a number of cores; the kernel refuses < 1000 µs. */
export function cfsQuotaUs(cores: number): number {
  return Math.max(1000, Math.round(cores * CFS_PERIOD_US));
}

function isErrno(e: unknown, ...codes: string[]): boolean {
  return codes.includes((e as NodeJS.ErrnoException).code ?? "");
}

/** Synchronous, like /proc (procfs.ts): cgroup files are the kernel's, never a disk's. */
async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENODEV")) return undefined;
    throw e;
  }
}

async function readNumber(path: string): Promise<number | undefined> {
  const s = await readTrimmed(path);
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

async function writeIfPresent(path: string, value: string): Promise<boolean> {
  try {
    await writeFile(path, value);
    return true;
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENODEV")) return false;
    throw e;
  }
}

export class CgroupV1 {
  private memswKnown: boolean | undefined;

  constructor(
    readonly root: string = DEFAULT_CGROUP_ROOT,
    readonly parent: string = DEFAULT_CGROUP_PARENT,
  ) {}

  /** Path of a task cgroup relative to a controller's mount, e.g. "torca/t-job_0-ab12cd34-1". */
  relative(name: string): string {
    return `${this.parent}/${name}`;
  }

  dir(controller: string, name: string): string {
    return join(this.root, controller, this.parent, name);
  }

  /** Whether task cgroups can be created here; the reason when not. */
  async usable(): Promise<{ ok: boolean; reason?: string }> {
    if (typeof process.getuid === "function" && process.getuid() !== 0) return { ok: false, reason: "not running as root" };
    for (const c of TASK_CONTROLLERS) {
      const base = join(this.root, c);
      try {
        await access(join(base, "cgroup.procs"), fsConstants.R_OK);
        await access(base, fsConstants.W_OK);
      } catch {
        return { ok: false, reason: `cgroup v1 controller ${c} not mounted or not writable at ${base}` };
      }
    }
    return { ok: true };
  }

  /** memory.memsw.* exists only with swap accounting enabled. */
  async hasMemsw(): Promise<boolean> {
    if (this.memswKnown === undefined) {
      try {
        await access(join(this.root, "memory", "memory.memsw.limit_in_bytes"));
        this.memswKnown = true;
      } catch {
        this.memswKnown = false;
      }
    }
    return this.memswKnown;
  }

  /** Creates the task's dirs in TASK_CONTROLLERS and applies the limits. */
  async create(name: string, limits: CgroupLimits): Promise<void> {
    await Promise.all(TASK_CONTROLLERS.map((c) => this.makeFresh(c, name)));
    // Quotas are counted in periods of CFS_PERIOD_US, the kernel's default: written only where it is not.
    const period = join(this.dir("cpu", name), "cpu.cfs_period_us");
    if ((await readNumber(period)) !== CFS_PERIOD_US) await writeFile(period, String(CFS_PERIOD_US));
    await this.setLimits(name, FRESH_CGROUP, limits);
  }

  /**
   * Writes the limits of `next` that differ from `prev` (what the cgroup has
   * now); memsw stays ≥ the memory limit throughout, so a raise writes memsw
   * first and a cut writes the memory limit first. Each write of a CPU quota
   * or period walks every cpu cgroup of the machine in the kernel
   * (tg_set_bandwidth), so only the quota is written: create() set the period.
   */
  async setLimits(name: string, prev: CgroupLimits, next: CgroupLimits): Promise<void> {
    const writes: Promise<void>[] = [];
    if (prev.pidsMax !== next.pidsMax) writes.push(writeFile(join(this.dir("pids", name), "pids.max"), String(next.pidsMax)));
    if (prev.cpuCores !== next.cpuCores) {
      const quota = next.cpuCores > 0 ? cfsQuotaUs(next.cpuCores) : -1;
      writes.push(writeFile(join(this.dir("cpu", name), "cpu.cfs_quota_us"), String(quota)));
    }
    if (prev.memoryBytes !== next.memoryBytes) {
      const mem = this.dir("memory", name);
      const limit = join(mem, "memory.limit_in_bytes");
      const memsw = join(mem, "memory.memsw.limit_in_bytes");
      const value = next.memoryBytes > 0 ? String(next.memoryBytes) : "-1";
      const raising = next.memoryBytes === 0 || (prev.memoryBytes > 0 && next.memoryBytes > prev.memoryBytes);
      if (!(await this.hasMemsw())) writes.push(writeFile(limit, value));
      else if (raising) writes.push(writeFile(memsw, value).then(() => writeFile(limit, value)));
      else writes.push(writeFile(limit, value).then(() => writeFile(memsw, value)));
    }
    await Promise.all(writes);
  }

  /**
   * A new, empty dir for the task. A leftover of the same name (an agent that
   * died between creating and removing it) is removed first when empty: reusing
   * it would keep its old limits, and lowering memsw below an old memory limit
   * fails with EINVAL. One that still holds processes is refused.
   */
  private async makeFresh(controller: string, name: string): Promise<void> {
    const dir = this.dir(controller, name);
    try {
      await mkdir(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        await mkdir(dir, { recursive: true });
        return;
      }
      if (code !== "EEXIST") throw e;
    }
    const procs = await readTrimmed(join(dir, "cgroup.procs"));
    if (procs) throw new DriverError(`cgroup ${dir} already exists and holds processes (${procs.split("\n").length}); refusing to share it`);
    await rmdir(dir);
    await mkdir(dir);
  }

  async exists(name: string): Promise<boolean> {
    try {
      await access(this.dir("pids", name));
      return true;
    } catch {
      return false;
    }
  }

  /** Pids (host view) of every process in the task's cgroup; [] when it does not exist. */
  async procs(name: string): Promise<number[]> {
    const text = await readTrimmed(join(this.dir("pids", name), "cgroup.procs"));
    if (!text) return [];
    return text.split("\n").map(Number).filter((n) => Number.isInteger(n) && n > 0);
  }

  /** Bytes charged to the task's memory cgroup (page cache included); undefined when it does not exist. */
  memoryCharged(name: string): Promise<number | undefined> {
    return readNumber(join(this.dir("memory", name), "memory.usage_in_bytes"));
  }

  /** Current usage; undefined when the cgroup does not exist (any more). */
  async usage(name: string): Promise<TaskUsage | undefined> {
    const mem = this.dir("memory", name);
    const [memoryBytes, memoryPeakBytes, cpuNs, pids] = await Promise.all([
      readNumber(join(mem, "memory.usage_in_bytes")),
      readNumber(join(mem, "memory.max_usage_in_bytes")),
      readNumber(join(this.dir("cpuacct", name), "cpuacct.usage")),
      readNumber(join(this.dir("pids", name), "pids.current")),
    ]);
    if (memoryBytes === undefined && cpuNs === undefined && pids === undefined) return undefined;
    return { cpuNs: cpuNs ?? 0, memoryBytes: memoryBytes ?? 0, memoryPeakBytes: memoryPeakBytes ?? 0, pids: pids ?? 0 };
  }

  /** Lowers (or restores) a running task's CPU quota; false when its cgroup is gone. */
  async setCpuQuota(name: string, cores: number): Promise<boolean> {
    return writeIfPresent(join(this.dir("cpu", name), "cpu.cfs_quota_us"), String(cfsQuotaUs(cores)));
  }

  /**
   * Whether the cgroup's cpu settings are still the ones `limits` wrote: the
   * default weight and the quota of `limits.cpuCores` (reclamation lowers
   * both on a running task, agent/reclaim/).
   */
  async cpuAsLimited(name: string, limits: CgroupLimits): Promise<boolean> {
    const cpu = this.dir("cpu", name);
    const [shares, quota] = await Promise.all([readTrimmed(join(cpu, "cpu.shares")), readTrimmed(join(cpu, "cpu.cfs_quota_us"))]);
    return shares === String(DEFAULT_CPU_SHARES) && quota === String(limits.cpuCores > 0 ? cfsQuotaUs(limits.cpuCores) : -1);
  }

  /** The task's CPU weight against its siblings when the machine is busy (DEFAULT_CPU_SHARES is the kernel's default). */
  async setCpuShares(name: string, shares: number): Promise<boolean> {
    return writeIfPresent(join(this.dir("cpu", name), "cpu.shares"), String(shares));
  }

  /** CFS throttling of the task by its own quota: periods, throttled periods, time throttled (ns). */
  async cpuStat(name: string): Promise<{ nrPeriods: number; nrThrottled: number; throttledNs: number } | undefined> {
    const text = await readTrimmed(join(this.dir("cpu", name), "cpu.stat"));
    if (text === undefined) return undefined;
    const fields = new Map(text.split("\n").map((line) => line.split(" ") as [string, string]));
    return { nrPeriods: Number(fields.get("nr_periods") ?? 0), nrThrottled: Number(fields.get("nr_throttled") ?? 0), throttledNs: Number(fields.get("throttled_time") ?? 0) };
  }

  /**
   * Removes the task's dir in `only` these controllers, or in every mounted
   * hierarchy (LXC creates them in all of them). rmdir fails with EBUSY while a
   * process is still inside, or shortly after the last one died, so it retries a
   * bounded number of times.
   */
  async remove(name: string, only?: readonly string[]): Promise<void> {
    let controllers: readonly string[];
    try {
      controllers = only ?? (await readdir(this.root));
    } catch {
      return;
    }
    await Promise.all(
      controllers.map(async (c) => {
        const dir = this.dir(c, name);
        for (let i = 0; i < 50; i++) {
          try {
            await rmdir(dir);
            return;
          } catch (e) {
            if (isErrno(e, "ENOENT", "ENOTDIR")) return;
            if (!isErrno(e, "EBUSY") || i === 49) throw e;
            await sleep(20);
          }
        }
      }),
    );
  }
}
