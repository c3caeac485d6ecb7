import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import { UnavailableError } from "../common/errors.js";
import { lockDir } from "./dir-lock.js";
import type { SqlDatabase, SqlQueryable, SqlRow } from "./sql.js";

/**
 * The history store embedded in the manager: PGlite (PostgreSQL in
 * WebAssembly) with its PostgreSQL data directory in `dir/pgdata`, so a cell
 * needs no database server. One process at a time (a lock file in `dir` says
 * which); queries are serialized by PGlite itself.
 */

function queryable(q: Pick<PGlite, "query">): SqlQueryable {
  return {
    async query<R extends SqlRow>(sql: string, params: readonly unknown[] = []) {
      const r = await q.query<R>(sql, params as unknown[]);
      return r.rows;
    },
  };
}

/**
 * A new database is created in a worker thread (seconds of CPU that must not
 * hold the event loop); opening an existing one in this thread then costs
 * about a second, the WebAssembly start.
 */
async function createOffThread(dataDir: string): Promise<void> {
  if (existsSync(join(dataDir, "PG_VERSION"))) return;
  await new Promise<void>((resolve, reject) => {
    const worker = new Worker(new URL("./embedded-init-worker.js", import.meta.url), { workerData: { dataDir } });
    worker.once("error", reject);
    worker.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`creating the database exited with code ${code}`))));
  });
}

export async function openEmbedded(dir: string): Promise<SqlDatabase> {
  const lock = lockDir(dir, "the embedded history database");
  const dataDir = join(dir, "pgdata");
  let pglite: PGlite;
  try {
    await createOffThread(dataDir);
    pglite = await PGlite.create({ dataDir });
  } catch (e) {
    lock.release();
    throw new UnavailableError(`cannot open the embedded history database in ${dir}: ${(e as Error).message}`, e);
  }
  return {
    engine: "embedded",
    ...queryable(pglite),
    transaction: <T>(fn: (tx: SqlQueryable) => Promise<T>) => pglite.transaction((tx) => fn(queryable(tx))),
    async close() {
      try {
        await pglite.close();
      } finally {
        lock.release();
      }
    },
  };
}
