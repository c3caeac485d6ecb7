import type { ExitInfo, Job, JobSpec, TaskEvent, TaskInstance, TaskState } from "../common/types.js";

/**
 * What the primary hands to the history store when finished work leaves
 * ZooKeeper: one job generation with the runs being archived, and every task
 * instance of those runs. A job is identified across failover and name reuse
 * by (jobId, generation), the generation being the ms time of the job's first
 * submission.
 */

/** Per-task totals from the agents' cgroup readings. */
export interface TaskUsage {
  cpuSeconds: number;
  memoryByteSeconds: number;
  peakMemoryBytes: number;
  wallSeconds: number;
}

export const NO_USAGE: TaskUsage = Object.freeze({ cpuSeconds: 0, memoryByteSeconds: 0, peakMemoryBytes: 0, wallSeconds: 0 });

export interface ArchivedVersion {
  version: number;
  submittedAt: number;
  spec: JobSpec;
  /** The task file as submitted. */
  source: string;
}

export const FINISHED_STATUSES = ["complete", "failed", "dead"] as const;
export type FinishedStatus = (typeof FINISHED_STATUSES)[number];

/** One run: the only run of a batch or service job, or one firing of a cron job. */
export interface ArchivedRun {
  run: number;
  version: number;
  status: FinishedStatus;
  startedAt?: number;
  finishedAt: number;
}

export interface ArchivedTask {
  id: string;
  index: number;
  run: number;
  version: number;
  state: TaskState;
  /** Starts of this instance (restarts and reschedules included). */
  attempts: number;
  /** Nodes the instance ran on, oldest first; the last one is where its usage is counted. */
  nodes: string[];
  exit?: ExitInfo;
  reason?: string;
  createdAt: number;
  startedAt?: number;
  finishedAt: number;
  events: TaskEvent[];
  usage: TaskUsage;
}

export interface ArchiveRecord {
  jobId: string;
  /** Fixed for the job's whole life in ZooKeeper (its creation time, not a new version's): a different generation is a different job. */
  generation: number;
  namespace: string;
  name: string;
  type: JobSpec["type"];
  submittedAt: number;
  versions: ArchivedVersion[];
  runs: ArchivedRun[];
  tasks: ArchivedTask[];
}

/** What confirms an archive before deletion: the job generation and the runs that must all be stored. */
export interface ArchiveKey {
  jobId: string;
  generation: number;
  runs: number[];
}

export function archiveKeyOf(r: ArchiveRecord): ArchiveKey {
  return { jobId: r.jobId, generation: r.generation, runs: r.runs.map((x) => x.run) };
}

/** A terminal task instance as the state store holds it, for the archive. */
export function archivedTaskOf(t: TaskInstance, version: number, usage: TaskUsage = NO_USAGE): ArchivedTask {
  const node = t.nodeId ?? t.lastNodeId;
  return {
    id: t.id,
    index: t.index,
    run: t.run,
    version,
    state: t.state,
    attempts: t.attempt,
    nodes: node ? [node] : [],
    ...(t.exit ? { exit: t.exit } : {}),
    ...(t.reason !== undefined ? { reason: t.reason } : {}),
    createdAt: t.createdAt,
    ...(t.startedAt !== undefined ? { startedAt: t.startedAt } : {}),
    finishedAt: t.finishedAt ?? t.updatedAt,
    events: t.events,
    usage,
  };
}

/** The first version of a job as the state store holds it (jobs without version history). */
export function archivedVersionOf(job: Job, version = 1): ArchivedVersion {
  return { version, submittedAt: job.submittedAt, spec: job.spec, source: job.source };
}

export interface FinishedRunState {
  run: number;
  status: FinishedStatus;
  /** The run's task instances, all terminal. */
  tasks: TaskInstance[];
  /** Default: the newest of the record's versions. */
  version?: number;
}

/**
 * The archive of a job generation's finished runs, from the state store's
 * shapes; a run starts with its first task and finishes with its last.
 * `usage` gives each task's totals (absent: none were reported).
 */
export function archiveRecordOf(o: {
  job: Job;
  generation: number;
  versions?: ArchivedVersion[];
  runs: FinishedRunState[];
  usage?: (t: TaskInstance) => TaskUsage | undefined;
}): ArchiveRecord {
  const versions = o.versions ?? [archivedVersionOf(o.job)];
  const newest = Math.max(...versions.map((v) => v.version));
  const runs = o.runs.map((r) => ({ ...r, version: r.version ?? newest, archived: r.tasks.map((t) => archivedTaskOf(t, t.version ?? r.version ?? newest, o.usage?.(t))) }));
  return {
    jobId: o.job.id,
    generation: o.generation,
    namespace: o.job.spec.namespace,
    name: o.job.spec.name,
    type: o.job.spec.type,
    submittedAt: o.job.submittedAt,
    versions,
    runs: runs.map((r) => {
      const starts = r.archived.flatMap((t) => (t.startedAt === undefined ? [] : [t.startedAt]));
      return {
        run: r.run,
        version: r.version,
        status: r.status,
        ...(starts.length ? { startedAt: Math.min(...starts) } : {}),
        finishedAt: r.archived.length ? Math.max(...r.archived.map((t) => t.finishedAt)) : o.job.updatedAt,
      };
    }),
    tasks: runs.flatMap((r) => r.archived),
  };
}
