import pg from "pg";
import { UnavailableError } from "../common/errors.js";
import { createLogger } from "../common/logger.js";
import type { HistoryConfig } from "../common/config.js";
import type { SqlDatabase, SqlQueryable, SqlRow } from "./sql.js";

/** The history store on a PostgreSQL server, through a `pg` connection pool. */

export type PostgresHistoryConfig = Extract<HistoryConfig, { engine: "postgres" }>;

const log = createLogger("history");

/** Where the server is, for messages: the URL without its password. */
export function describeServer(c: PostgresHistoryConfig): string {
  if (c.url) {
    const u = new URL(c.url);
    if (u.password) u.password = "***";
    return u.toString();
  }
  return `${c.user ? `${c.user}@` : ""}${c.host}${c.port ? `:${c.port}` : ""}/${c.database ?? ""}`;
}

function queryable(client: pg.Pool | pg.PoolClient): SqlQueryable {
  return {
    async query<R extends SqlRow>(sql: string, params: readonly unknown[] = []) {
      const r = await client.query<R>(sql, params as unknown[]);
      return r.rows;
    },
  };
}

/** Opens a pool and checks that the server answers, so a wrong address fails at start rather than at the first archive. */
export async function openPostgres(c: PostgresHistoryConfig): Promise<SqlDatabase> {
  const pool = new pg.Pool({
    ...(c.url ? { connectionString: c.url } : { host: c.host, port: c.port, user: c.user, password: c.password, database: c.database }),
    max: c.poolSize,
    connectionTimeoutMillis: c.connectTimeout,
    application_name: "torca",
  });
  // An idle client losing its server emits here; without a listener the process would exit. The next query reconnects.
  pool.on("error", (e) => log.warn({ err: e, server: describeServer(c) }, "history database connection lost"));
  try {
    await pool.query("SELECT 1");
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw new UnavailableError(`cannot reach the history database ${describeServer(c)}: ${(e as Error).message}`, e);
  }
  const db: SqlDatabase = {
    engine: "postgres",
    ...queryable(pool),
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: unknown;
      // A checked-out client whose server goes away emits "error" besides failing its query; unheard, that event would end the process.
      const onError = (e: Error) => (broken = e);
      client.on("error", onError);
      try {
        await client.query("BEGIN");
        const result = await fn(queryable(client));
        await client.query("COMMIT");
        return result;
      } catch (e) {
        await client.query("ROLLBACK").catch((rollbackError: unknown) => (broken = rollbackError));
        throw e;
      } finally {
        // A broken connection (its server gone, or a failed rollback) is dropped rather than handed to the next caller.
        client.removeListener("error", onError);
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    async close() {
      await pool.end();
    },
  };
  return db;
}
