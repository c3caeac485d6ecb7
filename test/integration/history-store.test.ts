import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IntegrityError, ValidationError } from "../../src/common/errors.js";
import { openEmbedded } from "../../src/history/embedded.js";
import { MIGRATIONS, checksumOf, migrate } from "../../src/history/migrations.js";
import { openHistoryDatabase } from "../../src/history/open.js";
import { NO_NODE } from "../../src/history/queries.js";
import { archiveKeyOf } from "../../src/history/record.js";
import type { SqlDatabase, SqlQueryable } from "../../src/history/sql.js";
import { archiveJob } from "../../src/history/archive.js";
import { HistoryStore } from "../../src/history/store.js";
import { recordOf, usageOf } from "../harness/history-records.js";
import type { HistoryConfig } from "../../src/common/config.js";
import { startPostgres, type TestPostgres } from "../harness/postgres.js";

/**
 * The history store's contract, run against a real PostgreSQL server and
 * against the embedded engine (PGlite): the same statements must behave the
 * same on both.
 */

interface Engine {
  name: "postgres" | "embedded";
  start(): Promise<void>;
  /** An empty database. */
  fresh(): Promise<SqlDatabase>;
  /** Another start on the database `fresh` last gave (the previous handle closed). */
  restart(): Promise<SqlDatabase>;
  /** Ends the transaction's connection the way a killed primary's would end. */
  cut(tx: SqlQueryable): Promise<void>;
  /** A second manager's handle on the database `fresh` last gave, open at the same time; only engines that serve several. */
  alongside?(): Promise<SqlDatabase>;
  stop(): Promise<void>;
}

function postgresEngine(): Engine {
  let server: TestPostgres | undefined;
  let config: HistoryConfig | undefined;
  let n = 0;
  const open = () => openHistoryDatabase(config!);
  return {
    name: "postgres",
    async start() {
      server = await startPostgres();
    },
    async fresh() {
      config = await server!.historyDatabase(`history_${++n}`);
      return open();
    },
    restart: open,
    alongside: open,
    async cut(tx) {
      await tx.query("SELECT pg_terminate_backend(pg_backend_pid())");
    },
    async stop() {
      await server?.stop();
    },
  };
}

/**
 * PGlite's initdb takes seconds, so the embedded engine keeps one data
 * directory for the whole suite; `fresh` empties it, and `restart` closes and
 * reopens it as a manager's restart would. Tests get a handle whose close()
 * leaves the shared database open.
 */
function embeddedEngine(): Engine {
  const dir = mkdtempSync(join(tmpdir(), "torca-history-embedded-"));
  let db: SqlDatabase | undefined;
  const borrowed = (d: SqlDatabase): SqlDatabase => ({ engine: d.engine, query: (s, p) => d.query(s, p), transaction: (fn) => d.transaction(fn), close: async () => undefined });
  return {
    name: "embedded",
    async start() {
      db = await openEmbedded(dir);
    },
    async fresh() {
      await db!.query("DROP SCHEMA public CASCADE");
      await db!.query("CREATE SCHEMA public");
      return borrowed(db!);
    },
    // One process holds the database: a killed primary's transaction ends with the process, uncommitted.
    cut() {
      return Promise.reject(new Error("the process holding the transaction died"));
    },
    async restart() {
      await db!.close();
      db = await openEmbedded(dir);
      return borrowed(db);
    },
    async stop() {
      await db?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0, 123);

function suite(engine: Engine) {
  describe(`the history store on ${engine.name}`, () => {
    before(() => engine.start(), { timeout: 180_000 });
    after(() => engine.stop());

    const open = async () => HistoryStore.on(await engine.fresh());

    test("a new database gets every migration once, and a second start applies none", async () => {
      const first = await open();
      assert.deepEqual(first.migrationsApplied, MIGRATIONS.map((m) => m.version));
      await first.close();
      const second = await HistoryStore.on(await engine.restart());
      assert.deepEqual(second.migrationsApplied, []);
      const rows = await second.db.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
      await second.close();
    });

    if (engine.alongside) {
      const alongside = engine.alongside;
      test("two managers starting at once apply the migrations once between them", async () => {
        const a = await engine.fresh();
        const stores = await Promise.all([HistoryStore.on(a), HistoryStore.on(await alongside())]);
        assert.deepEqual(stores.map((s) => s.migrationsApplied.length).sort(), [0, MIGRATIONS.length]);
        await Promise.all(stores.map((s) => s.close()));
      });
    }

    test("an archive written twice (a primary killed before deleting) is stored once", async () => {
      const store = await open();
      const rec = recordOf({ name: "etl", generation: T0, runs: [{ run: 0, status: "complete", finishedAt: T0 + HOUR }], tasks: 10 });
      assert.equal(await store.isArchived(archiveKeyOf(rec)), false);
      assert.deepEqual(await store.archiveJob(rec), { runs: 1, tasks: 10 });
      assert.equal(await store.isArchived(archiveKeyOf(rec)), true);
      assert.deepEqual(await store.archiveJob(rec), { runs: 0, tasks: 0 });
      assert.equal(await store.countTasks(), 10);
      assert.equal((await store.listFinished()).items.length, 1);
      assert.equal((await store.jobView("etl")).versions.length, 1);
      await store.close();
    });

    test("an archive cut off mid-transaction (a primary killed while archiving) stores nothing, and the next one stores it whole", async () => {
      const store = await open();
      const rec = recordOf({ name: "etl", generation: T0, runs: [{ run: 0, status: "complete", finishedAt: T0 + HOUR }], tasks: 10 });
      // The connection dies after the job and version rows are written, before runs and tasks.
      let statements = 0;
      const dying: SqlDatabase = {
        ...store.db,
        transaction: (fn) =>
          store.db.transaction((tx) =>
            fn({
              async query(sql, params) {
                if (++statements === 3) await engine.cut(tx);
                return tx.query(sql, params);
              },
            }),
          ),
      };
      await assert.rejects(archiveJob(dying, rec));
      assert.equal(await store.isArchived({ jobId: "etl", generation: T0, runs: [] }), false, "not even the job row");
      assert.deepEqual(await store.archiveJob(rec), { runs: 1, tasks: 10 });
      assert.equal(await store.countTasks(), 10);
      await store.close();
    });

    test("the archive is confirmed only when the job and every run of the key are stored", async () => {
      const store = await open();
      const rec = recordOf({ name: "etl", generation: T0, runs: [{ run: 0, status: "complete", finishedAt: T0 + HOUR }] });
      await store.archiveJob(rec);
      assert.equal(await store.isArchived({ jobId: "etl", generation: T0, runs: [0] }), true);
      assert.equal(await store.isArchived({ jobId: "etl", generation: T0, runs: [0, 1] }), false);
      assert.equal(await store.isArchived({ jobId: "etl", generation: T0 + 1, runs: [0] }), false, "another generation of the same name");
      await store.close();
    });

    test("cron runs archived a few at a time join one job, each run stored once", async () => {
      const store = await open();
      const runs = [1, 2, 3].map((run) => ({ run, status: "complete" as const, finishedAt: T0 + run * HOUR }));
      assert.deepEqual(await store.archiveJob(recordOf({ name: "nightly", generation: T0, runs: runs.slice(0, 2) })), { runs: 2, tasks: 4 });
      assert.deepEqual(await store.archiveJob(recordOf({ name: "nightly", generation: T0, runs: runs.slice(1) })), { runs: 1, tasks: 2 });
      const view = await store.jobView("nightly");
      assert.deepEqual(view.runs.map((r) => r.run), [3, 2, 1]);
      assert.equal(await store.countTasks(), 6);
      await store.close();
    });

    test("a record that contradicts itself is refused before anything is written", async () => {
      const store = await open();
      const rec = recordOf({ name: "etl", generation: T0, runs: [{ run: 0, status: "complete", finishedAt: T0 }] });
      rec.tasks[1] = { ...rec.tasks[1]!, run: 7 };
      await assert.rejects(store.archiveJob(rec), (e: unknown) => e instanceof IntegrityError && /task etl\/1 names run 7/.test(e.message));
      assert.equal(await store.countTasks(), 0);
      assert.equal(await store.isArchived({ jobId: "etl", generation: T0, runs: [] }), false);
      await store.close();
    });

    test("finished runs are listed newest first, filtered, and paged without gaps or repeats", async () => {
      const store = await open();
      const jobs = [
        { name: "a", namespace: "default", status: "complete", at: 1 },
        { name: "b", namespace: "ml", status: "failed", at: 2 },
        { name: "c", namespace: "default", status: "dead", at: 3 },
        { name: "d", namespace: "ml", status: "complete", at: 3 }, // the same finish time as c: paging must still see both
        { name: "e", namespace: "default", status: "failed", at: 4 },
        { name: "f", namespace: "ml", status: "complete", at: 5 },
        { name: "g", namespace: "default", status: "complete", at: 6 },
      ] as const;
      for (const j of jobs) await store.archiveJob(recordOf({ name: j.name, namespace: j.namespace, generation: T0, runs: [{ run: 0, status: j.status, finishedAt: T0 + j.at * HOUR }] }));

      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listFinished({ limit: 3, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((i) => i.job));
        cursor = page.next;
        pages++;
      } while (cursor);
      assert.equal(pages, 3);
      assert.deepEqual(seen.slice(0, 3), ["g", "f", "e"]);
      assert.deepEqual([...seen].sort(), ["a", "b", "c", "d", "e", "f", "g"], "every run once");
      assert.deepEqual(seen.slice(-1), ["a"]);

      const ml = await store.listFinished({ namespace: "ml" });
      assert.deepEqual(ml.items.map((i) => i.jobId), ["ml:f", "ml:d", "ml:b"]);
      assert.equal(ml.next, undefined);
      const failed = await store.listFinished({ state: "failed" });
      assert.deepEqual(failed.items.map((i) => i.job), ["e", "b"]);
      const recent = await store.listFinished({ since: T0 + 4 * HOUR });
      assert.deepEqual(recent.items.map((i) => i.job), ["g", "f", "e"]);

      const [g] = (await store.listFinished({ limit: 1 })).items;
      assert.deepEqual(g, {
        job: "g",
        jobId: "g",
        namespace: "default",
        generation: T0,
        run: 0,
        version: 1,
        type: "batch",
        status: "complete",
        submittedAt: T0,
        startedAt: T0 + 6 * HOUR - 60_000,
        finishedAt: T0 + 6 * HOUR,
        tasks: 2,
      });
      await store.close();
    });

    test("a cursor this store did not issue, or a page size out of range, is an input error", async () => {
      const store = await open();
      await assert.rejects(store.listFinished({ cursor: "not-a-cursor" }), (e: unknown) => e instanceof ValidationError && e.field === "cursor");
      await assert.rejects(store.listFinished({ limit: 0 }), (e: unknown) => e instanceof ValidationError && e.field === "limit");
      await store.close();
    });

    test("a job's view holds every version and every run under its name, newest first, with tasks, exits and events", async () => {
      const store = await open();
      const first = recordOf({ name: "train", namespace: "ml", generation: T0, runs: [{ run: 0, status: "failed", finishedAt: T0 + HOUR }], versions: 2 });
      const reused = recordOf({ name: "train", namespace: "ml", generation: T0 + 2 * HOUR, runs: [{ run: 0, status: "complete", finishedAt: T0 + 3 * HOUR }] });
      await store.archiveJob(first);
      await store.archiveJob(reused);
      await store.archiveJob(recordOf({ name: "train", generation: T0, runs: [{ run: 0, status: "complete", finishedAt: T0 }] })); // same name, other namespace

      const view = await store.jobView("train", "ml");
      assert.equal(view.job, "train");
      assert.equal(view.namespace, "ml");
      assert.deepEqual(
        view.versions.map((v) => [v.generation, v.version]),
        [
          [T0 + 2 * HOUR, 1],
          [T0, 2],
          [T0, 1],
        ],
      );
      assert.equal(view.versions[1]!.source, first.versions[1]!.source);
      assert.deepEqual(view.versions[1]!.spec, first.versions[1]!.spec);
      assert.deepEqual(
        view.runs.map((r) => [r.generation, r.status]),
        [
          [T0 + 2 * HOUR, "complete"],
          [T0, "failed"],
        ],
      );
      const failedRun = view.runs[1]!;
      assert.equal(failedRun.version, 2);
      assert.deepEqual(failedRun.tasks[0], {
        id: "ml:train/0",
        state: "failed",
        exit: { exitCode: 3, signal: null, oomKilled: false, reason: "exit 3" },
        node: "node-a",
        nodes: ["node-b", "node-a"],
        attempts: 2,
        reason: "exit 3 after 2 attempts",
        startedAt: T0 + HOUR - 60_000,
        finishedAt: T0 + HOUR,
        events: first.tasks[0]!.events,
        usage: usageOf(0),
      });
      assert.equal(failedRun.tasks[1]!.reason, null);
      assert.deepEqual(await store.jobView("never-ran", "ml"), { job: "never-ran", namespace: "ml", versions: [], runs: [] });
      await store.close();
    });

    test("usage totals by namespace, job and node add up to the tasks' own figures", async () => {
      const store = await open();
      const old = recordOf({ name: "old", generation: T0, runs: [{ run: 0, status: "complete", finishedAt: T0 }], tasks: 4 });
      const etl = recordOf({ name: "etl", generation: T0, runs: [{ run: 0, status: "complete", finishedAt: T0 + 2 * HOUR }], tasks: 5, nodes: ["n1", "n2"] });
      const train = recordOf({ name: "train", namespace: "ml", generation: T0, runs: [{ run: 0, status: "failed", finishedAt: T0 + 3 * HOUR }], tasks: 3, nodes: ["n2"] });
      train.tasks[2] = { ...train.tasks[2]!, nodes: [], state: "killed" }; // killed before it ever reached a node
      for (const r of [old, etl, train]) await store.archiveJob(r);
      const since = T0 + HOUR;

      const sum = (xs: { cpuSeconds: number; memoryByteSeconds: number; wallSeconds: number }[]) =>
        xs.reduce((a, x) => ({ cpuSeconds: a.cpuSeconds + x.cpuSeconds, memoryByteSeconds: a.memoryByteSeconds + x.memoryByteSeconds, wallSeconds: a.wallSeconds + x.wallSeconds }), {
          cpuSeconds: 0,
          memoryByteSeconds: 0,
          wallSeconds: 0,
        });
      const expected = sum([...etl.tasks, ...train.tasks].map((t) => t.usage));

      const byNamespace = await store.usage({ by: "namespace", since });
      assert.deepEqual(byNamespace, [
        { key: "default", tasks: 5, cpuSeconds: 15, memoryByteSeconds: 15 * 2 ** 20, wallSeconds: 30 },
        { key: "ml", tasks: 3, cpuSeconds: 6, memoryByteSeconds: 6 * 2 ** 20, wallSeconds: 12 },
      ]);
      for (const by of ["namespace", "job", "node"] as const) {
        const rows = await store.usage({ by, since });
        assert.deepEqual(sum(rows), expected, `usage by ${by} adds up`);
        assert.equal(rows.reduce((a, r) => a + r.tasks, 0), 8);
      }
      const byNode = await store.usage({ by: "node", since });
      assert.deepEqual(
        byNode.map((r) => [r.key, r.tasks]),
        [
          ["n1", 3],
          ["n2", 4],
          [NO_NODE, 1],
        ],
      );
      assert.deepEqual((await store.usage({ by: "job" })).map((r) => r.key), ["etl", "old", "ml:train"]);
      assert.deepEqual((await store.usage({ by: "job", namespace: "ml" })).map((r) => r.key), ["ml:train"]);
      await store.close();
    });

    test("a database migrated by a newer Torca is refused with a message that says so", async () => {
      const store = await open();
      await store.db.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'from the future', 'x')");
      await store.close();
      await assert.rejects(HistoryStore.on(await engine.restart()), (e: unknown) => e instanceof IntegrityError && /at migration 99 \("from the future"\), newer than this Torca knows \(1\)/.test(e.message));
    });

    test("an edited migration or a hand-edited schema_migrations is refused with a message that says so", async () => {
      const store = await open();
      await store.db.query("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1");
      await store.close();
      await assert.rejects(HistoryStore.on(await engine.restart()), (e: unknown) => e instanceof IntegrityError && /records migration 1 as "history tables" \(checksum edited\).*different build/.test(e.message));

      const db = await engine.fresh();
      await migrate(db);
      const twoSteps = [...MIGRATIONS, { version: 2, name: "second", statements: ["SELECT 1"] }];
      await db.query("DELETE FROM schema_migrations");
      await db.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (2, 'second', $1)", [checksumOf(twoSteps[1]!)]);
      await assert.rejects(migrate(db, twoSteps), (e: unknown) => e instanceof IntegrityError && /migration 1 is missing before 2/.test(e.message));
      await db.close();
    });

    test("a migration that fails leaves the database as it was", async () => {
      const db = await engine.fresh();
      await migrate(db);
      const broken = [...MIGRATIONS, { version: 2, name: "broken", statements: ["CREATE TABLE history_extra (x integer)", "ALTER TABLE no_such_table ADD COLUMN y integer"] }];
      await assert.rejects(migrate(db, broken), (e: unknown) => e instanceof IntegrityError && /applying history migration 2 \("broken"\) failed/.test(e.message));
      assert.deepEqual((await db.query<{ version: number }>("SELECT version FROM schema_migrations")).map((r) => r.version), [1]);
      assert.deepEqual(await db.query("SELECT 1 FROM pg_tables WHERE tablename = 'history_extra'"), []);
      await db.close();
    });
  });
}

suite(postgresEngine());
suite(embeddedEngine());
