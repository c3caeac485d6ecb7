import { IntegrityError } from "../common/errors.js";
import type { ArchiveKey, ArchiveRecord } from "./record.js";
import { isoOf, type SqlDatabase, type SqlQueryable } from "./sql.js";

/**
 * Writing archives. Every row is keyed by what identifies it in ZooKeeper
 * ((job id, generation), then version, run, task index) and inserted with
 * ON CONFLICT DO NOTHING, all in one transaction: an archive written twice (a
 * primary killed after archiving, before deleting) is stored once, and one cut
 * short stores nothing. A run once archived is never rewritten.
 */

export interface ArchiveResult {
  /** Runs and tasks this call stored; 0 and 0 when the archive was already there. */
  runs: number;
  tasks: number;
}

/** The record's internal consistency; a violation is a bug in the caller, caught before anything is written. */
function checkRecord(r: ArchiveRecord): void {
  const where = `archive of ${r.jobId} (generation ${r.generation})`;
  const versions = new Set(r.versions.map((v) => v.version));
  const runs = new Set(r.runs.map((x) => x.run));
  if (r.runs.length === 0) throw new IntegrityError(`${where}: holds no run`);
  if (runs.size !== r.runs.length) throw new IntegrityError(`${where}: a run appears twice`);
  if (versions.size !== r.versions.length) throw new IntegrityError(`${where}: a version appears twice`);
  for (const x of r.runs) if (!versions.has(x.version)) throw new IntegrityError(`${where}: run ${x.run} names version ${x.version}, which the record does not hold`);
  const tasks = new Set<string>();
  for (const t of r.tasks) {
    if (!runs.has(t.run)) throw new IntegrityError(`${where}: task ${t.id} names run ${t.run}, which the record does not hold`);
    if (!versions.has(t.version)) throw new IntegrityError(`${where}: task ${t.id} names version ${t.version}, which the record does not hold`);
    const key = `${t.run}/${t.index}`;
    if (tasks.has(key)) throw new IntegrityError(`${where}: task ${t.index} of run ${t.run} appears twice`);
    tasks.add(key);
  }
}

async function count(tx: SqlQueryable, sql: string, params: unknown[]): Promise<number> {
  const rows = await tx.query<{ n: number }>(`WITH ins AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM ins`, params);
  return rows[0]!.n;
}

export async function archiveJob(db: SqlDatabase, r: ArchiveRecord): Promise<ArchiveResult> {
  checkRecord(r);
  return db.transaction(async (tx) => {
    // The inserted row or, when it was already there, the stored one: exactly one id either way.
    const [job] = await tx.query<{ id: string }>(
      `WITH ins AS (
         INSERT INTO history_jobs (job_id, generation, namespace, name, type, submitted_at)
         VALUES ($1, $2, $3, $4, $5, $6::timestamptz)
         ON CONFLICT (job_id, generation) DO NOTHING RETURNING id)
       SELECT id::text AS id FROM ins
       UNION ALL SELECT id::text FROM history_jobs WHERE job_id = $1 AND generation = $2`,
      [r.jobId, r.generation, r.namespace, r.name, r.type, isoOf(r.submittedAt)],
    );
    const jobKey = job!.id;
    await tx.query(
      `INSERT INTO history_versions (job, version, submitted_at, spec, source)
       SELECT $1::bigint, v.version, v.submitted_at, v.spec, v.source
       FROM jsonb_to_recordset($2::jsonb) AS v (version integer, submitted_at timestamptz, spec jsonb, source text)
       ON CONFLICT DO NOTHING`,
      [jobKey, JSON.stringify(r.versions.map((v) => ({ version: v.version, submitted_at: isoOf(v.submittedAt), spec: v.spec, source: v.source })))],
    );
    const runs = await count(
      tx,
      `INSERT INTO history_runs (job, run, version, status, started_at, finished_at)
       SELECT $1::bigint, x.run, x.version, x.status, x.started_at, x.finished_at
       FROM jsonb_to_recordset($2::jsonb) AS x (run integer, version integer, status text, started_at timestamptz, finished_at timestamptz)
       ON CONFLICT DO NOTHING`,
      [jobKey, JSON.stringify(r.runs.map((x) => ({ run: x.run, version: x.version, status: x.status, started_at: isoOf(x.startedAt), finished_at: isoOf(x.finishedAt) })))],
    );
    const tasks = await count(
      tx,
      `INSERT INTO history_tasks (run, task_index, task_id, version, state, attempts, node, nodes, exit_code, exit_signal, oom_killed, exit_reason, reason,
                                  created_at, started_at, finished_at, events, cpu_seconds, memory_byte_seconds, peak_memory_bytes, wall_seconds)
       SELECT r.id, t.task_index, t.task_id, t.version, t.state, t.attempts, t.nodes->>-1, t.nodes, t.exit_code, t.exit_signal, t.oom_killed, t.exit_reason, t.reason,
              t.created_at, t.started_at, t.finished_at, t.events, t.cpu_seconds, t.memory_byte_seconds, t.peak_memory_bytes, t.wall_seconds
       FROM jsonb_to_recordset($2::jsonb) AS t (run integer, task_index integer, task_id text, version integer, state text, attempts integer, nodes jsonb,
              exit_code integer, exit_signal text, oom_killed boolean, exit_reason text, reason text, created_at timestamptz, started_at timestamptz,
              finished_at timestamptz, events jsonb, cpu_seconds double precision, memory_byte_seconds double precision, peak_memory_bytes bigint, wall_seconds double precision)
       JOIN history_runs r ON r.job = $1::bigint AND r.run = t.run
       ON CONFLICT DO NOTHING`,
      [
        jobKey,
        JSON.stringify(
          r.tasks.map((t) => ({
            run: t.run,
            task_index: t.index,
            task_id: t.id,
            version: t.version,
            state: t.state,
            attempts: t.attempts,
            nodes: t.nodes,
            exit_code: t.exit?.exitCode ?? null,
            exit_signal: t.exit?.signal ?? null,
            oom_killed: t.exit?.oomKilled ?? null,
            exit_reason: t.exit?.reason ?? null,
            reason: t.reason ?? null,
            created_at: isoOf(t.createdAt),
            started_at: isoOf(t.startedAt),
            finished_at: isoOf(t.finishedAt),
            events: t.events,
            cpu_seconds: t.usage.cpuSeconds,
            memory_byte_seconds: t.usage.memoryByteSeconds,
            peak_memory_bytes: Math.round(t.usage.peakMemoryBytes),
            wall_seconds: t.usage.wallSeconds,
          })),
        ),
      ],
    );
    return { runs, tasks };
  });
}

/** True when the job generation and every run in `key` are stored: the confirmation before deleting them from ZooKeeper. */
export async function isArchived(db: SqlQueryable, key: ArchiveKey): Promise<boolean> {
  const [row] = await db.query<{ jobs: number; runs: number }>(
    `SELECT (SELECT count(*) FROM history_jobs WHERE job_id = $1 AND generation = $2)::int AS jobs,
            (SELECT count(*) FROM history_runs r JOIN history_jobs j ON j.id = r.job
              WHERE j.job_id = $1 AND j.generation = $2 AND r.run IN (SELECT value::integer FROM jsonb_array_elements_text($3::jsonb)))::int AS runs`,
    [key.jobId, key.generation, JSON.stringify(key.runs)],
  );
  return row!.jobs === 1 && row!.runs === new Set(key.runs).size;
}
