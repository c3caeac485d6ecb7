import type { Job, JobSpec, TaskInstance } from "../../common/types.js";
import type { Allocation } from "../scheduler/index.js";

/**
 * The one place allocation records are built. A task holds a reservation
 * (resources and static ports) on a node while it is dispatched or running
 * there, and while it waits out a restart backoff to come back to it: until
 * it is redispatched or moves, nothing else may take its room or its ports.
 */
export class AllocationBuilder {
  /**
   * Built once per task version and node (task records are replaced, never
   * changed): every round with pending work hands the scheduler all 100,000
   * allocations, and building them anew each time was most of the primary's
   * garbage during a large submission.
   */
  private readonly cache = new WeakMap<TaskInstance, { spec: JobSpec; alloc: Allocation }>();

  /** The allocation of `t` (of `job`) on `nodeId`. */
  of(t: TaskInstance, job: Job, nodeId: string): Allocation {
    let cached = this.cache.get(t);
    if (cached?.spec !== job.spec || cached.alloc.nodeId !== nodeId) {
      const staticPorts = job.spec.ports.flatMap((p) => (p.static === undefined ? [] : [p.static]));
      cached = { spec: job.spec, alloc: { taskId: t.id, jobId: t.jobId, nodeId, resources: job.spec.resources, priority: job.spec.priority, staticPorts, ...(t.devices ? { devices: t.devices } : {}) } };
      this.cache.set(t, cached);
    }
    return cached.alloc;
  }

  /** Where `t` holds a reservation, if anywhere. */
  static nodeHeld(t: TaskInstance): string | undefined {
    if (t.state === "dispatched" || t.state === "running") return t.nodeId;
    if (t.state === "pending" && t.desired === "run") return t.stickyNode;
    return undefined;
  }

  /** The reservations of `tasks` (those that hold one and whose job still exists). */
  reservations(jobs: ReadonlyMap<string, Job>, tasks: Iterable<TaskInstance>, into: Allocation[] = []): Allocation[] {
    for (const t of tasks) {
      const nodeId = AllocationBuilder.nodeHeld(t);
      if (nodeId === undefined) continue;
      const job = jobs.get(t.jobId);
      if (job !== undefined) into.push(this.of(t, job, nodeId));
    }
    return into;
  }
}
