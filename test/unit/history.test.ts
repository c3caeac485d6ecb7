import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/common/config.js";
import { ConfigError, UnavailableError } from "../../src/common/errors.js";
import { LOCK_FILE, lockDir } from "../../src/history/dir-lock.js";
import { openEmbedded } from "../../src/history/embedded.js";
import { MIGRATIONS, checksumOf } from "../../src/history/migrations.js";
import { archiveKeyOf, archiveRecordOf, archivedTaskOf, NO_USAGE } from "../../src/history/record.js";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { specOf } from "../harness/history-records.js";

const dir = mkdtempSync(join(tmpdir(), "torca-history-unit-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe("manager.history in the config", () => {
  test("defaults to the embedded engine in .torca/history beside the config file", () => {
    const { config } = loadConfig(configFile("default.yaml", "manager: { id: m1 }\n"), {});
    assert.deepEqual(config.manager.history, { engine: "embedded", dir: join(dir, ".torca/history") });
  });

  test("names a PostgreSQL server by URL, with a pool size and connect timeout in human units", () => {
    const { config } = loadConfig(configFile("pg.yaml", "manager:\n  history: { engine: postgres, url: 'postgresql://torca@db.example:5432/torca', poolSize: 8, connectTimeout: 3s }\n"), {});
    assert.deepEqual(config.manager.history, { engine: "postgres", url: "postgresql://torca@db.example:5432/torca", poolSize: 8, connectTimeout: 3000 });
  });

  test("takes the database from the environment like any other key", () => {
    const { config } = loadConfig(undefined, { TORCA_MANAGER_HISTORY: "{engine: postgres, host: 10.0.0.5, database: torca}" });
    assert.deepEqual(config.manager.history, { engine: "postgres", host: "10.0.0.5", database: "torca", poolSize: 4, connectTimeout: 10_000 });
  });

  test("refuses a PostgreSQL entry without exactly one of url or host, an unknown engine, and unknown keys", () => {
    const bad = (text: string, message: RegExp) =>
      assert.throws(() => loadConfig(configFile("bad.yaml", text), {}), (e: unknown) => e instanceof ConfigError && message.test(e.message), text);
    bad("manager: { history: { engine: postgres } }\n", /manager\.history: give exactly one of url or host/);
    bad("manager: { history: { engine: postgres, url: 'postgresql://a/b', host: a } }\n", /manager\.history: give exactly one of url or host/);
    bad("manager: { history: { engine: postgres, url: 'mysql://a/b' } }\n", /manager\.history\.url: must be a postgres/);
    bad("manager: { history: { engine: sqlite } }\n", /manager\.history\.engine/);
    bad("manager: { history: { engine: embedded, dir: x, url: y } }\n", /unknown key "url"/);
  });
});

describe("the migrations", () => {
  test("are numbered 1, 2, 3… with distinct names, as the runner applies them by position", () => {
    assert.deepEqual(MIGRATIONS.map((m) => m.version), MIGRATIONS.map((_, i) => i + 1));
    assert.equal(new Set(MIGRATIONS.map((m) => m.name)).size, MIGRATIONS.length);
  });

  test("are identified by a checksum of their statements", () => {
    const m = MIGRATIONS[0]!;
    assert.equal(checksumOf(m), checksumOf({ ...m }));
    assert.notEqual(checksumOf(m), checksumOf({ ...m, statements: [...m.statements, "SELECT 1"] }));
  });
});

describe("the embedded database's directory lock", () => {
  test("lets one holder at a time in, and the next one after release", () => {
    const d = join(dir, "one-holder");
    const held = lockDir(d, "the store");
    assert.throws(() => lockDir(d, "the store"), (e: unknown) => e instanceof UnavailableError && new RegExp(`in use by process ${process.pid} `).test(e.message));
    held.release();
    assert.equal(existsSync(join(d, LOCK_FILE)), false);
    lockDir(d, "the store").release();
  });

  test("takes over a lock whose process is gone", () => {
    const d = join(dir, "stale");
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    lockDir(d, "the store").release();
    writeFileSync(join(d, LOCK_FILE), `${hostname()} ${gone}\n`);
    lockDir(d, "the store").release();
  });

  test("refuses a lock held from another host, whose process it cannot check", () => {
    const d = join(dir, "remote");
    lockDir(d, "the store").release();
    writeFileSync(join(d, LOCK_FILE), "elsewhere 1\n");
    assert.throws(() => lockDir(d, "the store"), /in use by process 1 on elsewhere/);
  });

  test("keeps a second manager out of an embedded database that is open", async () => {
    const d = join(dir, "embedded");
    const held = lockDir(d, "the store");
    await assert.rejects(openEmbedded(d), (e: unknown) => e instanceof UnavailableError && /use engine: postgres for several/.test(e.message));
    held.release();
  });
});

const failedTask: TaskInstance = {
  id: "ml:train/3",
  jobId: "ml:train",
  index: 3,
  run: 0,
  desired: "stop",
  state: "failed",
  attempt: 4,
  restartsOnNode: 0,
  migrations: 1,
  lastNodeId: "n7",
  exit: { exitCode: 1, signal: null, oomKilled: false, reason: "exit 1" },
  reason: "failed 4 times",
  createdAt: 1000,
  updatedAt: 9000,
  startedAt: 2000,
  events: [{ at: 1000, type: "created", message: "created" }],
};

describe("a terminal task instance in the archive", () => {
  test("keeps its attempts, node, exit, reason and events, and finishes when it last changed if no finish was recorded", () => {
    const t = failedTask;
    assert.deepEqual(archivedTaskOf(t, 2), {
      id: "ml:train/3",
      index: 3,
      run: 0,
      version: 2,
      state: "failed",
      attempts: 4,
      nodes: ["n7"],
      exit: t.exit,
      reason: "failed 4 times",
      createdAt: 1000,
      startedAt: 2000,
      finishedAt: 9000,
      events: t.events,
      usage: NO_USAGE,
    });
  });
});

describe("a job's archive record from the state store", () => {
  test("holds each finished run, starting with its first task and finishing with its last, with the usage reported per task", () => {
    const job: Job = { id: "ml:train", spec: specOf("train", "ml", "0 * * * *"), source: "name: train\n", status: "running", desired: "run", submittedAt: 500, updatedAt: 99_000, cron: { runs: 2 } };
    const done: TaskInstance = { ...failedTask, id: "ml:train/0", index: 0, run: 1, state: "completed", reason: undefined, exit: undefined, startedAt: 1500, finishedAt: 4000 };
    const usage = { cpuSeconds: 2, memoryByteSeconds: 3, peakMemoryBytes: 4, wallSeconds: 5 };
    const rec = archiveRecordOf({
      job,
      generation: 500,
      runs: [{ run: 1, status: "failed", tasks: [done, { ...failedTask, run: 1 }] }],
      usage: (t) => (t.index === 0 ? usage : undefined),
    });
    assert.deepEqual(rec.versions, [{ version: 1, submittedAt: 500, spec: job.spec, source: "name: train\n" }]);
    assert.deepEqual(rec.runs, [{ run: 1, version: 1, status: "failed", startedAt: 1500, finishedAt: 9000 }]);
    assert.deepEqual(rec.tasks.map((t) => [t.id, t.run, t.usage]), [
      ["ml:train/0", 1, usage],
      ["ml:train/3", 1, NO_USAGE],
    ]);
    assert.deepEqual(archiveKeyOf(rec), { jobId: "ml:train", generation: 500, runs: [1] });
  });
});
