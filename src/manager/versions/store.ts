import { z } from "zod";
import { readJson } from "../../common/json.js";
import type { JobSpec } from "../../common/types.js";
import { zpaths, type ZPaths } from "../../coord/paths.js";
import type { ZkSession } from "../../coord/zk.js";

/** Versions of a live job kept in ZooKeeper; older ones are dropped from the list (the newest stay). */
export const KEPT_VERSIONS = 10;

export interface JobVersion {
  version: number;
  submittedAt: number;
  /** The task file as submitted. */
  source: string;
  spec: JobSpec;
  packageDigest?: string;
  /** Set once a deployment of this version succeeded (what an automatic revert goes back to). */
  stable?: boolean;
  /** The version this one re-submitted (`torca revert`, or an automatic revert). */
  revertOf?: number;
  /** How the deployment of this version ended. */
  deployment?: { status: string; description: string; finishedAt: number };
}

const StoredSpecSchema = z.custom<JobSpec>((v) => typeof v === "object" && v !== null && !Array.isArray(v), { message: "Expected the job spec object" });

const JobVersionSchema = z
  .object({
    version: z.number().int().min(0),
    submittedAt: z.number(),
    source: z.string(),
    spec: StoredSpecSchema,
    packageDigest: z.string().optional(),
    stable: z.boolean().optional(),
    revertOf: z.number().int().min(0).optional(),
    deployment: z.object({ status: z.string(), description: z.string(), finishedAt: z.number() }).optional(),
  })
  .passthrough() satisfies z.ZodType<JobVersion, z.ZodTypeDef, unknown>;

const JobVersionsSchema = z.object({ versions: z.array(JobVersionSchema) }).passthrough();

/**
 * The versions of each live job, newest first, as one znode per job
 * (/versions/<job>), written by the primary only. A read is cached for the
 * term: the primary is the only writer.
 */
export class VersionStore {
  private readonly p: ZPaths;
  private readonly cache = new Map<string, JobVersion[]>();

  constructor(
    private readonly zk: ZkSession,
    root: string,
  ) {
    this.p = zpaths(root);
  }

  /** Newest first; empty for a job never versioned (submitted before versions existed). */
  async list(jobId: string): Promise<JobVersion[]> {
    const cached = this.cache.get(jobId);
    if (cached) return cached;
    const path = this.p.jobVersions(jobId);
    const r = await this.zk.getIfExists(path);
    const versions = r ? readJson(JobVersionsSchema, r.data, path).versions : [];
    this.cache.set(jobId, versions);
    return versions;
  }

  async get(jobId: string, version: number): Promise<JobVersion | undefined> {
    return (await this.list(jobId)).find((v) => v.version === version);
  }

  /** Starts the list of a new job with `v` when the job has none; false when it has one (left by a job of that name that was never created). */
  async createFirst(jobId: string, v: JobVersion): Promise<boolean> {
    const created = await this.zk.createIfAbsent(this.p.jobVersions(jobId), JSON.stringify({ versions: [v] }));
    if (created) this.cache.set(jobId, [v]);
    return created;
  }

  /** Adds a version (replacing one of the same number); `fresh` starts the list over (a new job of a reused name). */
  async add(jobId: string, v: JobVersion, fresh = false): Promise<void> {
    const kept = fresh ? [] : (await this.list(jobId)).filter((x) => x.version !== v.version);
    await this.write(jobId, [v, ...kept].sort((a, b) => b.version - a.version).slice(0, KEPT_VERSIONS));
  }

  /** Records how a version's deployment ended; a successful one makes the version stable. */
  async recordOutcome(jobId: string, version: number, outcome: NonNullable<JobVersion["deployment"]>): Promise<void> {
    const list = await this.list(jobId);
    if (!list.some((v) => v.version === version)) return;
    await this.write(jobId, list.map((v) => (v.version === version ? { ...v, deployment: outcome, ...(outcome.status === "successful" ? { stable: true } : {}) } : v)));
  }

  /** The job left ZooKeeper (its versions went to the history store with it). */
  async forget(jobId: string): Promise<void> {
    await this.zk.delete(this.p.jobVersions(jobId)).catch(() => undefined);
    this.cache.delete(jobId);
  }

  private async write(jobId: string, versions: JobVersion[]): Promise<void> {
    const path = this.p.jobVersions(jobId);
    const data = JSON.stringify({ versions });
    await this.zk.putRetrying(this.p.versions, path, data);
    this.cache.set(jobId, versions);
  }
}
