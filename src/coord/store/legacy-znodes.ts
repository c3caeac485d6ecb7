import type { Logger } from "../../common/logger.js";
import { parallel } from "../../common/parallel.js";
import type { ZPaths } from "../paths.js";
import type { ZkSession } from "../zk.js";
import { chunkOf, parseTasksChild } from "./chunks.js";

/** Deletions in flight at once. */
const MAX_PARALLEL_DELETES = 64;

/**
 * Per-index task znodes (the layout before chunks) whose records are now in
 * chunks: the jobs that have some are noted as the copy meets them, and the
 * primary deletes them in the background. Only a znode whose chunk exists is
 * deleted, and a chunk wins over the znodes of its range, so a deletion cut
 * short by a crash loses nothing: the next primary finishes it.
 */
export class LegacyZnodes {
  private readonly jobs = new Set<string>();
  private running: Promise<void> | undefined;

  constructor(
    private readonly zk: ZkSession,
    private readonly p: ZPaths,
    /** The chunks that exist of a job, as the copy knows them. */
    private readonly chunksOf: (jobId: string) => ReadonlyMap<number, unknown> | undefined,
    private readonly log?: Logger,
  ) {}

  /** The job has per-index znodes in the range of an existing chunk. */
  note(jobId: string): void {
    this.jobs.add(jobId);
  }

  forget(jobId: string): void {
    this.jobs.delete(jobId);
  }

  /** Starts deleting the noted jobs' leftover znodes, unless that is under way (what is noted meanwhile waits for the next call). */
  clean(): void {
    if (this.running || this.jobs.size === 0) return;
    this.running = this.deleteAll()
      .catch((e: unknown) => this.log?.warn({ err: e }, "deleting per-index task znodes failed; the next primary deletes them"))
      .finally(() => {
        this.running = undefined;
      });
  }

  private async deleteAll(): Promise<void> {
    for (const jobId of [...this.jobs]) {
      this.jobs.delete(jobId);
      if (!(await this.zk.exists(this.p.tasks(jobId)))) continue;
      const chunks = this.chunksOf(jobId);
      const stale = (await this.zk.children(this.p.tasks(jobId)))
        .map(parseTasksChild)
        .flatMap((c) => (c.kind === "legacy" && chunks?.has(chunkOf(c.index)) ? [c.index] : []));
      await parallel(stale, MAX_PARALLEL_DELETES, (i) => this.zk.delete(this.p.legacyTask(jobId, i)));
      if (stale.length > 0) this.log?.info({ job: jobId, znodes: stale.length }, "per-index task znodes deleted (their records are in chunks)");
    }
  }
}
