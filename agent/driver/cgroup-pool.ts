/**
 * Task cgroups prepared ahead and reused (process driver): creating and removing
 * a task's four cgroup v1 dirs costs more of the agent's time than starting
 * the task itself, so a finished task's emptied cgroup goes back to a pool and
 * the next task gets it with its own limits written over the old ones (only
 * those that differ). Counters are not carried over: the wrapper resets peak
 * memory, limit hits and CPU time before the task starts and reports OOM kills
 * as the difference to the count it found (wrapper.ts).
 *
 * A pooled cgroup is named p-<scope hash>-<process token>-<n>: the scope (the
 * agent's tasks dir) keeps agents on one host apart; the token marks the pools
 * of this process, so the empty pooled dirs an earlier agent process left
 * behind are removed when the pool opens, and a cgroup of an earlier process
 * (a recovered task) is removed after its task instead of being pooled.
 */
import { createHash, randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { TASK_CONTROLLERS, type CgroupLimits, type CgroupV1 } from "./cgroup.js";

/** Idle cgroups kept per pool; more than the tasks a machine starts at once. */
export const POOL_MAX_IDLE = 64;
/** Memory still charged to an emptied cgroup (page cache of its last task) above which it is removed instead of pooled. */
export const POOL_MAX_LEFTOVER_BYTES = 4 * 1024 * 1024;

const processToken = randomBytes(4).toString("hex");

/** The start of the names of every pooled cgroup of a scope, whichever process made it. */
export function pooledCgroupPrefix(scope: string): string {
  return `p-${createHash("sha256").update(scope).digest("hex").slice(0, 8)}-`;
}

interface Idle {
  name: string;
  limits: CgroupLimits;
}

export class CgroupPool {
  private readonly idle: Idle[] = [];
  /** Limits last written to each cgroup of this pool that is in use. */
  private readonly inUse = new Map<string, CgroupLimits>();
  private readonly prefix: string;
  private seq = 0;
  private opened: Promise<void> | undefined;

  constructor(
    private readonly cgroup: CgroupV1,
    scope: string,
    private readonly maxIdle = POOL_MAX_IDLE,
  ) {
    this.prefix = pooledCgroupPrefix(scope);
  }

  /** Whether `name` is a cgroup of this pool (and so of this process). */
  owns(name: string): boolean {
    return name.startsWith(`${this.prefix}${processToken}-`);
  }

  /** Removes the empty pooled dirs of earlier processes of this scope (busy ones belong to tasks still running). */
  private open(): Promise<void> {
    this.opened ??= removeIdlePooledCgroups(this.cgroup, this.prefix, (n) => this.owns(n)).then(() => undefined);
    return this.opened;
  }

  /** A cgroup with `limits` for a new task: an idle one of this pool, else a new one. */
  async acquire(limits: CgroupLimits): Promise<string> {
    await this.open();
    const reused = this.idle.pop();
    if (reused) {
      try {
        await this.cgroup.setLimits(reused.name, reused.limits, limits);
        this.inUse.set(reused.name, limits);
        return reused.name;
      } catch {
        // A limit the kernel refuses over the old ones (memory still charged above a lower limit): start afresh.
        await this.cgroup.remove(reused.name, TASK_CONTROLLERS).catch(() => undefined);
      }
    }
    const name = `${this.prefix}${processToken}-${++this.seq}`;
    await this.cgroup.create(name, limits);
    this.inUse.set(name, limits);
    return name;
  }

  /**
   * Removes the idle cgroups (the agent is stopping). Every quota write on the
   * machine walks all cpu cgroups in the kernel, so a pool left behind by an
   * agent that no later process of its scope opens would tax the machine for
   * good. Cgroups in use are the tasks' and stay.
   */
  async drain(): Promise<number> {
    const idle = this.idle.splice(0);
    await Promise.all(idle.map((i) => this.cgroup.remove(i.name, TASK_CONTROLLERS).catch(() => undefined)));
    return idle.length;
  }

  /**
   * Takes back the cgroup of a task that is gone and whose cgroup is empty (the
   * driver's destroy makes sure): pooled when it is this pool's, holds little
   * memory and the pool has room; removed otherwise.
   */
  async release(name: string): Promise<void> {
    const limits = this.inUse.get(name);
    // Released before (idle, or already another task's): never removed from under that task.
    if (limits === undefined && this.owns(name)) return;
    this.inUse.delete(name);
    if (limits && this.idle.length < this.maxIdle && (await this.cgroup.procs(name)).length === 0) {
      const charged = await this.cgroup.memoryCharged(name);
      // Reused, a cgroup gets only the limits that differ from the recorded ones: one whose cpu weight or quota was changed meanwhile is not reused.
      if (charged !== undefined && charged <= POOL_MAX_LEFTOVER_BYTES && (await this.cgroup.cpuAsLimited(name, limits))) {
        this.idle.push({ name, limits });
        return;
      }
    }
    await this.cgroup.remove(name, this.owns(name) ? TASK_CONTROLLERS : undefined);
  }
}

/**
 * Removes the empty pooled cgroups named with `prefix` (pooledCgroupPrefix of
 * a scope), except those `keep` names; busy ones belong to tasks still
 * running. Resolves with how many were removed.
 */
async function removeIdlePooledCgroups(cgroup: CgroupV1, prefix: string, keep: (name: string) => boolean = () => false): Promise<number> {
  let names: string[];
  try {
    names = await readdir(join(cgroup.root, "pids", cgroup.parent));
  } catch {
    return 0;
  }
  const stale = names.filter((n) => n.startsWith(prefix) && !keep(n));
  const removed = await Promise.all(
    stale.map(async (n) => {
      const busy = await cgroup.procs(n).then((procs) => procs.length > 0, () => true);
      if (busy) return false;
      return cgroup.remove(n, TASK_CONTROLLERS).then(
        () => true,
        () => false,
      );
    }),
  );
  return removed.filter(Boolean).length;
}

/**
 * Removes the idle pooled cgroups an agent of `scope` (its tasks dir) left
 * behind, whichever process made them: for whoever retires an agent for good
 * (a local cell stopping), since an agent killed by SIGKILL drains nothing
 * and only a later agent of the same scope would.
 */
export function removeLeftoverPooledCgroups(cgroup: CgroupV1, scope: string): Promise<number> {
  return removeIdlePooledCgroups(cgroup, pooledCgroupPrefix(scope));
}

const pools = new Map<string, CgroupPool>();

/** Drains every pool of this process under `cgroup`'s root and parent (see CgroupPool.drain); resolves with the cgroups removed. */
export async function drainCgroupPools(cgroup: CgroupV1): Promise<number> {
  const prefix = `${cgroup.root}\0${cgroup.parent}\0`;
  const drained = await Promise.all([...pools].filter(([key]) => key.startsWith(prefix)).map(([, pool]) => pool.drain()));
  return drained.reduce((a, b) => a + b, 0);
}

/** The one pool of this process for a scope under a cgroup root and parent (drivers of one process share it). */
export function cgroupPoolFor(cgroup: CgroupV1, scope: string): CgroupPool {
  const key = `${cgroup.root}\0${cgroup.parent}\0${scope}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = new CgroupPool(cgroup, scope);
    pools.set(key, pool);
  }
  return pool;
}
