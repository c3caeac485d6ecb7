import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HistoryStore } from "../src/history/store.js";
import { recordOf } from "../test/harness/history-records.js";
import { startPostgres } from "../test/harness/postgres.js";

/**
 * P10, archival rate: jobs of 10 finished tasks archived one after the other
 * (one transaction each, as retention archives them) into a fresh history
 * store, on a real PostgreSQL server (fsync off, as the test harness runs it)
 * and on the embedded engine; then the same archives again (the
 * after-failover path, every row a conflict), and the time of the queries
 * the CLI makes over what was stored.
 */

const TASKS = 10;

async function measure(store: HistoryStore, jobs: number): Promise<Record<string, number>> {
  const records = Array.from({ length: jobs }, (_, i) => recordOf({ name: `job-${i}`, namespace: i % 2 ? "ml" : "default", generation: 1_700_000_000_000 + i, runs: [{ run: 0, status: i % 7 ? "complete" : "failed", finishedAt: 1_700_000_100_000 + i * 1000 }], tasks: TASKS }));
  let t = performance.now();
  for (const r of records) await store.archiveJob(r);
  const archiveMs = performance.now() - t;
  t = performance.now();
  for (const r of records) await store.archiveJob(r);
  const againMs = performance.now() - t;
  t = performance.now();
  await store.listFinished({ limit: 50 });
  const listMs = performance.now() - t;
  t = performance.now();
  await store.usage({ by: "node" });
  const usageMs = performance.now() - t;
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    jobs,
    tasksStored: await store.countTasks(),
    jobsPerSecond: round((jobs / archiveMs) * 1000),
    tasksPerSecond: round(((jobs * TASKS) / archiveMs) * 1000),
    repeatedArchivesPerSecond: round((jobs / againMs) * 1000),
    listFinishedMs: round(listMs),
    usageByNodeMs: round(usageMs),
  };
}

function prefixed(prefix: string, r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [`${prefix} ${k}`, v]));
}

export async function benchHistoryArchive(jobs = 500): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const server = await startPostgres();
  try {
    const store = await HistoryStore.open({ engine: "postgres", url: await server.createDatabase("bench"), poolSize: 4, connectTimeout: 10_000 });
    try {
      Object.assign(out, prefixed("postgres", await measure(store, jobs)));
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
  const dir = mkdtempSync(join(tmpdir(), "torca-bench-history-"));
  try {
    const t = performance.now();
    const store = await HistoryStore.open({ engine: "embedded", dir });
    out["embedded first open ms"] = Math.round(performance.now() - t);
    try {
      Object.assign(out, prefixed("embedded", await measure(store, jobs)));
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const jobs = Number(process.argv[2] ?? 500);
  for (const [k, v] of Object.entries(await benchHistoryArchive(jobs))) process.stdout.write(`${k}: ${v}\n`);
}
