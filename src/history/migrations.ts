import { createHash } from "node:crypto";
import { IntegrityError } from "../common/errors.js";
import type { SqlDatabase } from "./sql.js";

/**
 * The history schema, as numbered migrations applied in order at start.
 * A migration once released is never edited (its checksum is recorded and
 * checked); a change to the schema is a new migration at the end.
 *
 * `schema_migrations` records what was applied. Applying runs in one
 * transaction under a transaction-scoped advisory lock, so two managers
 * starting at once against one PostgreSQL serialize: the first applies, the
 * second finds everything applied. PostgreSQL's DDL is transactional, so a
 * failed migration leaves the database as it was.
 */

export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "history tables",
    statements: [
      // One row per job generation: a name reused after the job left ZooKeeper is a new generation.
      `CREATE TABLE history_jobs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id text NOT NULL,
        generation bigint NOT NULL,
        namespace text NOT NULL,
        name text NOT NULL,
        type text NOT NULL,
        submitted_at timestamptz NOT NULL,
        archived_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (job_id, generation)
      )`,
      `CREATE INDEX history_jobs_by_name ON history_jobs (namespace, name)`,
      `CREATE TABLE history_versions (
        job bigint NOT NULL REFERENCES history_jobs (id) ON DELETE CASCADE,
        version integer NOT NULL,
        submitted_at timestamptz NOT NULL,
        spec jsonb NOT NULL,
        source text NOT NULL,
        PRIMARY KEY (job, version)
      )`,
      `CREATE TABLE history_runs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job bigint NOT NULL REFERENCES history_jobs (id) ON DELETE CASCADE,
        run integer NOT NULL,
        version integer NOT NULL,
        status text NOT NULL CHECK (status IN ('complete', 'failed', 'dead')),
        started_at timestamptz,
        finished_at timestamptz NOT NULL,
        UNIQUE (job, run)
      )`,
      `CREATE INDEX history_runs_newest ON history_runs (finished_at DESC, id DESC)`,
      `CREATE TABLE history_tasks (
        run bigint NOT NULL REFERENCES history_runs (id) ON DELETE CASCADE,
        task_index integer NOT NULL,
        task_id text NOT NULL,
        version integer NOT NULL,
        state text NOT NULL,
        attempts integer NOT NULL,
        node text,
        nodes jsonb NOT NULL,
        exit_code integer,
        exit_signal text,
        oom_killed boolean,
        exit_reason text,
        reason text,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz NOT NULL,
        events jsonb NOT NULL,
        cpu_seconds double precision NOT NULL,
        memory_byte_seconds double precision NOT NULL,
        peak_memory_bytes bigint NOT NULL,
        wall_seconds double precision NOT NULL,
        PRIMARY KEY (run, task_index)
      )`,
      `CREATE INDEX history_tasks_by_finish ON history_tasks (finished_at)`,
      `CREATE INDEX history_tasks_by_node ON history_tasks (node, finished_at)`,
    ],
  },
];

/** Any constant: the key of the advisory lock that serializes migrations in one database. */
const MIGRATION_LOCK = 7_300_015;

export function checksumOf(m: Migration): string {
  return createHash("sha256").update(m.statements.join(";\n")).digest("hex").slice(0, 16);
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/** Throws unless what the database records is a prefix of `known`, migration for migration. */
function checkApplied(applied: AppliedRow[], known: readonly Migration[]): void {
  const latest = known.at(-1)?.version ?? 0;
  applied.forEach((row, i) => {
    const m = known.find((k) => k.version === row.version);
    if (!m) {
      throw new IntegrityError(
        row.version > latest
          ? `the history database is at migration ${row.version} ("${row.name}"), newer than this Torca knows (${latest}): it was migrated by a newer Torca; run that version, or point manager.history at another database`
          : `the history database records migration ${row.version} ("${row.name}"), which this Torca does not have`,
        { field: "schema_migrations", version: row.version },
      );
    }
    if (row.version !== i + 1) {
      throw new IntegrityError(
        `the history database records migrations ${applied.map((a) => a.version).join(", ")}: migration ${i + 1} is missing before ${row.version}, so schema_migrations was edited by hand`,
        { field: "schema_migrations", version: i + 1 },
      );
    }
    if (row.name !== m.name || row.checksum !== checksumOf(m)) {
      throw new IntegrityError(
        `the history database records migration ${row.version} as "${row.name}" (checksum ${row.checksum}), but this Torca's migration ${m.version} is "${m.name}" (checksum ${checksumOf(m)}): the database was migrated by a different build`,
        { field: "schema_migrations", version: row.version },
      );
    }
  });
}

/** Brings the schema up to date; returns the versions it applied (none when already current). */
export async function migrate(db: SqlDatabase, known: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const applied = await tx.query<AppliedRow & Record<string, unknown>>("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    checkApplied(applied, known);
    const pending = known.slice(applied.length);
    for (const m of pending) {
      try {
        for (const s of m.statements) await tx.query(s);
      } catch (e) {
        throw new IntegrityError(`applying history migration ${m.version} ("${m.name}") failed: ${(e as Error).message}`, { field: "schema_migrations", version: m.version });
      }
      await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [m.version, m.name, checksumOf(m)]);
    }
    return pending.map((m) => m.version);
  });
}
