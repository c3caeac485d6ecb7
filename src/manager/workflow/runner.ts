import { randomUUID } from "node:crypto";
import { ConflictError, isTorcaError, NotFoundError, ValidationError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { TASKFILE_DEFAULTS } from "../../common/taskfile/index.js";
import { jobIdOf, type Job, type JobSpec, type TaskInstance } from "../../common/types.js";
import { deriveJobStatus } from "../primary/job-status.js";
import { decide, expiredWorkflows, newRecord, phaseOf, resumed, type Observation, type Submission } from "./decide.js";
import type { StoredWorkflow, WorkflowRecords } from "./store.js";
import { ACTIVE_NODE_STATES, workflowIdOf, type WorkflowDef, type WorkflowRecord } from "./types.js";

export interface WorkflowRunnerDeps {
  store: WorkflowRecords;
  /** The primary's copy of jobs and tasks. */
  jobs: { readonly jobs: ReadonlyMap<string, Job>; tasksOf(jobId: string): readonly TaskInstance[] };
  /** Creates a job (the primary's own submission path: quota, name reuse); called inside the serial queue. */
  createJob(spec: JobSpec, source: string, packageDigest: string | undefined): Promise<Job>;
  /** Kills a job; called inside the serial queue. */
  killJob(jobId: string): Promise<void>;
  /** The primary's serial queue: API operations and the tick's phase never interleave. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  requestTick(): void;
  now(): number;
  /** How long a finished workflow stays in ZooKeeper (manager.retention.terminal). */
  retentionMs: number;
  log: Logger;
}

/** A workflow is one znode; ZooKeeper refuses one over about 1 MiB (jute.maxbuffer), and node progress grows it a little. */
const MAX_RECORD_BYTES = 768 * 1024;

/** A node's package digest, resolved at submission (the same for its PRE and POST). */
export type PackageDigests = Readonly<Record<string, string>>;

/** The environment every job of a workflow gets, besides `vars` (docs/workflows.md). */
function workflowEnv(rec: WorkflowRecord, s: Submission): Record<string, string> {
  const node = rec.nodes[s.node];
  return {
    TORCA_WORKFLOW: workflowIdOf(rec.def.namespace, rec.def.name),
    TORCA_WORKFLOW_NODE: s.node,
    TORCA_WORKFLOW_ATTEMPT: String(s.attempt),
    TORCA_WORKFLOW_RUN: runMarker(rec, s.seq),
    ...(s.phase === "post" && node?.jobStatus ? { TORCA_JOB_STATUS: node.jobStatus } : {}),
  };
}

/** Which submission a job is: a job of the same name from another attempt, resume or workflow has another marker. */
function runMarker(rec: WorkflowRecord, seq: number): string {
  return `${rec.uid}-${seq}`;
}

/** The job of one submission: the node's job, or a small batch job running its PRE or POST command with the node's package. */
export function jobSpecOf(rec: WorkflowRecord, s: Submission): JobSpec {
  const def = rec.def.nodes.find((n) => n.name === s.node)!;
  const base: JobSpec = { ...def.job, name: s.job, namespace: rec.def.namespace };
  const env = { ...base.env, ...workflowEnv(rec, s) };
  if (s.phase === "job") return { ...base, env };
  const { service: _service, notify: _notify, ...rest } = base;
  return {
    ...rest,
    env,
    command: (s.phase === "pre" ? def.pre : def.post)!,
    instances: 1,
    ports: [],
    resources: { ...TASKFILE_DEFAULTS.resources, disk: base.resources.disk },
    restart: { ...base.restart, attempts: 0 },
  };
}

/**
 * The primary's side of workflows: the tick's phase that advances every
 * running workflow (decide.ts) and carries out its decisions, and the API's
 * submit, kill and resume. The records are cached for the term (this primary
 * is their only writer) and reloaded after a version conflict.
 *
 * Order of effects: a workflow's new record is written before any job it
 * asks for is created or killed, so a successor finds in the record every
 * submission this primary may have made, and tells by each job's
 * TORCA_WORKFLOW_RUN whether it was made (decide.ts).
 */
export class WorkflowRunner {
  private cache?: Map<string, StoredWorkflow>;

  constructor(private readonly d: WorkflowRunnerDeps) {}

  /** The tick's phase: every running workflow one step further; finished ones past retention removed. */
  async advance(): Promise<void> {
    const all = await this.records();
    let first: unknown;
    for (const stored of [...all.values()]) {
      try {
        await this.step(stored);
      } catch (e) {
        if (e instanceof ConflictError) this.cache = undefined;
        first ??= e;
      }
    }
    for (const r of expiredWorkflows([...all.values()].map((s) => s.record), this.d.now(), this.d.retentionMs)) {
      const id = workflowIdOf(r.def.namespace, r.def.name);
      const stored = all.get(id)!;
      await this.d.store.remove(id, stored.version).catch((e: unknown) => (first ??= e));
      all.delete(id);
      this.d.log.info({ workflow: id, state: r.state }, "finished workflow removed after its retention");
    }
    if (first) throw first;
  }

  submit(def: WorkflowDef, source: string, digests: PackageDigests): Promise<WorkflowRecord> {
    return this.d.run(async () => {
      const id = workflowIdOf(def.namespace, def.name);
      const all = await this.records();
      const existing = all.get(id);
      if (existing?.record.state === "running") throw new ConflictError(`workflow ${id} is running; kill it first or choose another name`, { workflow: id });
      if (existing) {
        await this.d.store.remove(id, existing.version);
        all.delete(id);
      }
      const withDigests: WorkflowDef = { ...def, nodes: def.nodes.map((n) => (digests[n.name] ? { ...n, packageDigest: digests[n.name] } : n)) };
      const record = newRecord(withDigests, source, randomUUID(), this.d.now());
      const size = Buffer.byteLength(JSON.stringify(record));
      if (size > MAX_RECORD_BYTES) {
        throw new ValidationError([{ field: "nodes", message: `the workflow's record would take ${size} bytes, over the ${MAX_RECORD_BYTES} one ZooKeeper node holds: split it into smaller workflows` }]);
      }
      const created = await this.d.store.create(record);
      all.set(id, created);
      this.d.log.info({ workflow: id, nodes: def.nodes.length }, "workflow submitted");
      await this.step(created);
      return all.get(id)!.record;
    });
  }

  kill(id: string): Promise<WorkflowRecord> {
    return this.d.run(async () => {
      const stored = await this.find(id);
      if (stored.record.state !== "running") return stored.record;
      return this.step(await this.write({ ...stored.record, desired: "stop", updatedAt: this.d.now() }, stored.version));
    });
  }

  resume(id: string): Promise<WorkflowRecord> {
    return this.d.run(async () => {
      const stored = await this.find(id);
      const next = resumed(stored.record, this.d.now());
      if (typeof next === "string") throw new ConflictError(next, { workflow: id });
      this.d.log.info({ workflow: id, resumes: next.resumes }, "workflow resumed");
      return this.step(await this.write(next, stored.version));
    });
  }

  private async find(id: string): Promise<StoredWorkflow> {
    const stored = (await this.records()).get(id);
    if (!stored) throw new NotFoundError("workflow", id);
    return stored;
  }

  private async records(): Promise<Map<string, StoredWorkflow>> {
    if (!this.cache) {
      const loaded = await this.d.store.list().catch((e: unknown) => (isTorcaError(e) && e.status === 404 ? [] : Promise.reject(e)));
      this.cache = new Map(loaded.map((s) => [workflowIdOf(s.record.def.namespace, s.record.def.name), s]));
    }
    return this.cache;
  }

  private async write(record: WorkflowRecord, version: number): Promise<StoredWorkflow> {
    const stored = await this.d.store.update(record, version);
    (await this.records()).set(workflowIdOf(record.def.namespace, record.def.name), stored);
    return stored;
  }

  /** What became of each active node's current job, told apart from other submissions by TORCA_WORKFLOW_RUN. */
  private observe(rec: WorkflowRecord): Record<string, Observation> {
    const out: Record<string, Observation> = {};
    for (const [name, node] of Object.entries(rec.nodes)) {
      if (!ACTIVE_NODE_STATES.has(node.state) || !node.job || !phaseOf(node.state)) continue;
      const job = this.d.jobs.jobs.get(jobIdOf(rec.def.namespace, node.job));
      if (!job || job.spec.env.TORCA_WORKFLOW_RUN !== runMarker(rec, node.seq)) {
        out[name] = { seq: node.seq, status: "absent" };
        continue;
      }
      const status = deriveJobStatus(job, this.d.jobs.tasksOf(job.id));
      out[name] = { seq: node.seq, status: status === "complete" ? "complete" : status === "failed" || status === "dead" ? "failed" : "active" };
    }
    return out;
  }

  /** One decision for one workflow: the record first, then kills and submissions. */
  private async step(stored: StoredWorkflow): Promise<WorkflowRecord> {
    const d = decide(stored.record, this.observe(stored.record), this.d.now());
    let cur = stored;
    if (d.changed) cur = await this.write(d.record, stored.version);
    const rec = cur.record;
    const id = workflowIdOf(rec.def.namespace, rec.def.name);
    if (d.changed && rec.state !== "running" && stored.record.state === "running") this.d.log.info({ workflow: id, state: rec.state }, "workflow finished");
    for (const name of d.kill) await this.d.killJob(jobIdOf(rec.def.namespace, name)).catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
    const refused: Record<string, string> = {};
    for (const s of d.submit) {
      const def = rec.def.nodes.find((n) => n.name === s.node)!;
      try {
        await this.d.createJob(jobSpecOf(rec, s), `# workflow ${id}, node ${s.node}, ${s.phase}, attempt ${s.attempt}\n${rec.source}`, def.packageDigest);
      } catch (e) {
        // Refusals (a quota, a job of that name still stopping) are retried every tick; the node says why meanwhile.
        if (!isTorcaError(e) || e.status >= 500) throw e;
        const why = `submitting ${s.job} refused: ${e instanceof ValidationError ? e.issues.map((i) => i.message).join("; ") : e.message}`;
        if (rec.nodes[s.node]?.reason !== why) refused[s.node] = why;
      }
    }
    if (Object.keys(refused).length === 0) return rec;
    const nodes = { ...rec.nodes };
    for (const [node, reason] of Object.entries(refused)) nodes[node] = { ...nodes[node]!, reason };
    return (await this.write({ ...rec, nodes, updatedAt: this.d.now() }, cur.version)).record;
  }
}
