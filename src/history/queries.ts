import { z } from "zod";
import { ValidationError } from "../common/errors.js";
import { readJson } from "../common/json.js";
import type { ExitInfo, JobSpec, TaskEvent, TaskState } from "../common/types.js";
import type { FinishedStatus, TaskUsage } from "./record.js";
import { isoOf, msOf, type SqlQueryable } from "./sql.js";

/**
 * Reading the history: finished runs newest first (`torca history`), one job's
 * archived versions and runs (`torca history JOB`), usage totals
 * (`torca usage`), and a count for checks. Shapes are the JSON of
 * DESIGN.md's `torca history` / `torca usage`; times are ms since the epoch.
 */

export interface FinishedRun {
  job: string;
  jobId: string;
  namespace: string;
  generation: number;
  run: number;
  version: number;
  type: JobSpec["type"];
  status: FinishedStatus;
  submittedAt: number;
  startedAt?: number;
  finishedAt: number;
  tasks: number;
}

export interface FinishedPage {
  items: FinishedRun[];
  /** Pass as `cursor` for the next (older) page; absent on the last page. */
  next?: string;
}

export interface ListFinishedOptions {
  namespace?: string;
  /** Runs finished at or after this time (ms). */
  since?: number;
  state?: FinishedStatus;
  /** 1..1000, default 50. */
  limit?: number;
  cursor?: string;
}

export interface TaskView {
  id: string;
  state: TaskState;
  exit: ExitInfo | null;
  /** The node of the last attempt. */
  node: string | null;
  nodes: string[];
  attempts: number;
  reason: string | null;
  startedAt?: number;
  finishedAt: number;
  events: TaskEvent[];
  usage: TaskUsage;
}

export interface RunView {
  generation: number;
  run: number;
  version: number;
  status: FinishedStatus;
  startedAt?: number;
  finishedAt: number;
  tasks: TaskView[];
}

export interface VersionView {
  version: number;
  submittedAt: number;
  generation: number;
  spec: JobSpec;
  source: string;
}

export interface JobView {
  job: string;
  namespace: string;
  versions: VersionView[];
  runs: RunView[];
}

export const USAGE_KEYS = ["namespace", "job", "node"] as const;
export type UsageKey = (typeof USAGE_KEYS)[number];

export interface UsageRow {
  key: string;
  tasks: number;
  cpuSeconds: number;
  memoryByteSeconds: number;
  wallSeconds: number;
}

/** The key tasks that never reached a node are counted under in usage by node (node ids cannot contain parentheses). */
export const NO_NODE = "(none)";

const MAX_PAGE = 1000;

const cursorSchema = z.object({ f: z.number().int(), i: z.string().regex(/^\d{1,19}$/) }).strict();
const eventsSchema = z.array(z.object({ at: z.number(), type: z.string(), message: z.string() }).strict());
const nodesSchema = z.array(z.string());
// The spec was validated when the job was submitted; reading back checks only that a spec is what is stored.
const specSchema = z.object({ name: z.string(), namespace: z.string(), type: z.enum(["service", "batch"]) }).passthrough();

function encodeCursor(finishedAt: number, id: string): string {
  return Buffer.from(JSON.stringify({ f: finishedAt, i: id })).toString("base64url");
}

function decodeCursor(cursor: string): { f: number; i: string } {
  const r = cursorSchema.safeParse(
    (() => {
      try {
        return JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
      } catch {
        return undefined;
      }
    })(),
  );
  if (!r.success) throw new ValidationError([{ field: "cursor", message: "not a cursor from this history store" }]);
  return r.data;
}

export async function listFinished(db: SqlQueryable, o: ListFinishedOptions = {}): Promise<FinishedPage> {
  const limit = o.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new ValidationError([{ field: "limit", message: `must be an integer from 1 to ${MAX_PAGE}` }]);
  const after = o.cursor === undefined ? undefined : decodeCursor(o.cursor);
  const rows = await db.query(
    `SELECT r.id::text AS rid, j.name, j.job_id, j.namespace, j.generation::float8 AS generation, j.type, j.submitted_at,
            r.run, r.version, r.status, r.started_at, r.finished_at,
            (SELECT count(*) FROM history_tasks t WHERE t.run = r.id)::int AS tasks
     FROM history_runs r JOIN history_jobs j ON j.id = r.job
     WHERE ($1::text IS NULL OR j.namespace = $1)
       AND ($2::timestamptz IS NULL OR r.finished_at >= $2)
       AND ($3::text IS NULL OR r.status = $3)
       AND ($4::timestamptz IS NULL OR (r.finished_at, r.id) < ($4, $5::bigint))
     ORDER BY r.finished_at DESC, r.id DESC
     LIMIT $6`,
    [o.namespace ?? null, isoOf(o.since), o.state ?? null, after ? isoOf(after.f) : null, after?.i ?? null, limit + 1],
  );
  const items = rows.slice(0, limit).map(
    (x): FinishedRun => ({
      job: x.name as string,
      jobId: x.job_id as string,
      namespace: x.namespace as string,
      generation: x.generation as number,
      run: x.run as number,
      version: x.version as number,
      type: x.type as JobSpec["type"],
      status: x.status as FinishedStatus,
      submittedAt: msOf(x.submitted_at),
      ...(x.started_at ? { startedAt: msOf(x.started_at) } : {}),
      finishedAt: msOf(x.finished_at),
      tasks: x.tasks as number,
    }),
  );
  const last = rows[limit - 1];
  return rows.length > limit && last ? { items, next: encodeCursor(msOf(last.finished_at), last.rid as string) } : { items };
}

function exitOf(x: Record<string, unknown>): ExitInfo | null {
  if (x.exit_reason === null) return null;
  return { exitCode: x.exit_code as number | null, signal: x.exit_signal as string | null, oomKilled: x.oom_killed as boolean, reason: x.exit_reason as string };
}

/** Every archived version and run under a job name, newest first; empty lists when nothing under it was archived. */
export async function jobView(db: SqlQueryable, job: string, namespace = "default"): Promise<JobView> {
  const where = `history of ${namespace}/${job}`;
  const versions = await db.query(
    `SELECT v.version, v.submitted_at, j.generation::float8 AS generation, v.spec::text AS spec, v.source
     FROM history_versions v JOIN history_jobs j ON j.id = v.job
     WHERE j.namespace = $1 AND j.name = $2
     ORDER BY v.submitted_at DESC, j.generation DESC, v.version DESC`,
    [namespace, job],
  );
  const runs = await db.query(
    `SELECT r.id::text AS rid, j.generation::float8 AS generation, r.run, r.version, r.status, r.started_at, r.finished_at
     FROM history_runs r JOIN history_jobs j ON j.id = r.job
     WHERE j.namespace = $1 AND j.name = $2
     ORDER BY r.finished_at DESC, r.id DESC`,
    [namespace, job],
  );
  const tasks = await db.query(
    `SELECT t.run::text AS rid, t.task_id, t.state, t.attempts, t.node, t.nodes::text AS nodes, t.exit_code, t.exit_signal, t.oom_killed, t.exit_reason, t.reason,
            t.started_at, t.finished_at, t.events::text AS events,
            t.cpu_seconds, t.memory_byte_seconds, t.peak_memory_bytes::float8 AS peak_memory_bytes, t.wall_seconds
     FROM history_tasks t JOIN history_runs r ON r.id = t.run JOIN history_jobs j ON j.id = r.job
     WHERE j.namespace = $1 AND j.name = $2
     ORDER BY t.run, t.task_index`,
    [namespace, job],
  );
  const byRun = new Map<string, TaskView[]>();
  for (const t of tasks) {
    const list = byRun.get(t.rid as string) ?? [];
    list.push({
      id: t.task_id as string,
      state: t.state as TaskState,
      exit: exitOf(t),
      node: t.node as string | null,
      nodes: readJson(nodesSchema, t.nodes as string, `${where}: nodes of ${String(t.task_id)}`),
      attempts: t.attempts as number,
      reason: t.reason as string | null,
      ...(t.started_at ? { startedAt: msOf(t.started_at) } : {}),
      finishedAt: msOf(t.finished_at),
      events: readJson(eventsSchema, t.events as string, `${where}: events of ${String(t.task_id)}`),
      usage: {
        cpuSeconds: t.cpu_seconds as number,
        memoryByteSeconds: t.memory_byte_seconds as number,
        peakMemoryBytes: t.peak_memory_bytes as number,
        wallSeconds: t.wall_seconds as number,
      },
    });
    byRun.set(t.rid as string, list);
  }
  return {
    job,
    namespace,
    versions: versions.map((v) => ({
      version: v.version as number,
      submittedAt: msOf(v.submitted_at),
      generation: v.generation as number,
      spec: readJson(specSchema, v.spec as string, `${where}: spec of version ${String(v.version)}`) as unknown as JobSpec,
      source: v.source as string,
    })),
    runs: runs.map((r) => ({
      generation: r.generation as number,
      run: r.run as number,
      version: r.version as number,
      status: r.status as FinishedStatus,
      ...(r.started_at ? { startedAt: msOf(r.started_at) } : {}),
      finishedAt: msOf(r.finished_at),
      tasks: byRun.get(r.rid as string) ?? [],
    })),
  };
}

const USAGE_KEY_SQL: Record<UsageKey, string> = {
  namespace: "j.namespace",
  job: "j.job_id",
  node: `coalesce(t.node, '${NO_NODE}')`,
};

/** Totals of the tasks that finished since `since` (ms), by namespace, job id or node, largest CPU use first. */
export async function usage(db: SqlQueryable, o: { by: UsageKey; since?: number; namespace?: string }): Promise<UsageRow[]> {
  const key = USAGE_KEY_SQL[o.by];
  const rows = await db.query(
    `SELECT ${key} AS key, count(*)::int AS tasks, sum(t.cpu_seconds)::float8 AS cpu, sum(t.memory_byte_seconds)::float8 AS mem, sum(t.wall_seconds)::float8 AS wall
     FROM history_tasks t JOIN history_runs r ON r.id = t.run JOIN history_jobs j ON j.id = r.job
     WHERE ($1::timestamptz IS NULL OR t.finished_at >= $1) AND ($2::text IS NULL OR j.namespace = $2)
     GROUP BY 1
     ORDER BY cpu DESC, key`,
    [isoOf(o.since), o.namespace ?? null],
  );
  return rows.map((x) => ({ key: x.key as string, tasks: x.tasks as number, cpuSeconds: x.cpu as number, memoryByteSeconds: x.mem as number, wallSeconds: x.wall as number }));
}

/** Task instances stored, each once. */
export async function countTasks(db: SqlQueryable): Promise<number> {
  const [row] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM history_tasks");
  return row!.n;
}

/** Job generations stored (the overview's archived job count). */
export async function countJobs(db: SqlQueryable): Promise<number> {
  const [row] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM history_jobs");
  return row!.n;
}
