import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { FinishedPage, JobView, UsageRow } from "../../src/history/queries.js";
import type { HistoryConfig } from "../../src/common/config.js";
import { HistoryStore } from "../../src/history/store.js";
import { startTestCell, type TestCell } from "../harness/cell.js";
import { runTorca } from "../harness/cli.js";
import { jobsInZooKeeper, zookeeperFigures } from "../harness/zk-size.js";
import { until } from "../harness/wait.js";
import { startPostgres, type TestPostgres } from "../harness/postgres.js";

const job = (name: string, instances: number, command = "/bin/true") =>
  `name: ${name}\ntype: batch\ninstances: ${instances}\nisolation: process\ncommand: [${command}]\nrestart: { attempts: 0 }\nresources: { cpu: 0.05, memory: 16MiB }\n`;

for (const engine of ["embedded", "postgres"] as const) describe(`retention: finished jobs leave ZooKeeper for the ${engine} history store, each exactly once`, () => {
  let c: TestCell;
  let server: TestPostgres | undefined;
  /** The store's configuration as the managers parse it; the embedded one lives in the cell's directory. */
  let history: () => HistoryConfig;
  const submitted = new Map<string, number>();
  before(async () => {
    let extra = {};
    if (engine === "postgres") {
      server = await startPostgres();
      const config = await server.historyDatabase("torca_retention");
      history = () => config;
      extra = { history: config };
    } else {
      history = () => ({ engine: "embedded", dir: join(c.cell.dir, "history") });
    }
    c = await startTestCell({ managers: 2, agents: 1, managerExtra: { retention: { terminal: "2s", batch: 4 }, ...extra } });
  });
  after(async () => {
    await c?.close();
    await server?.stop();
  });

  const allHistory = async (): Promise<FinishedPage["items"]> => (await c.api.get(`${await c.primaryUrl()}/v1/history?limit=1000`).json<FinishedPage>()).items;
  const gone = async (prefix: string) => (await jobsInZooKeeper(c.cell.zookeeperConnect, c.cell.zookeeperAuth)).jobs.filter((j) => j.startsWith(prefix)).length === 0;

  test("after the retention a finished job is gone from ZooKeeper and from the backup's copy, archived once, and answers torca history and torca usage", async () => {
    const { backups } = await c.steadyPrimary();
    for (let i = 0; i < 3; i++) {
      await c.submit(job(`ret-${i}`, 3));
      submitted.set(`ret-${i}`, 3);
    }
    await c.submit(job("ret-fails", 2, "/bin/false"));
    submitted.set("ret-fails", 2);
    // The embedded store's first start (initdb in WebAssembly) takes up to 20 s on a loaded machine.
    await until("the finished jobs to leave ZooKeeper", () => gone("ret-"), { timeoutMs: 120_000, intervalMs: 250 });
    const backup = c.cell.daemons.get(backups[0]!)!;
    await until("the backup's copy to follow", async () => {
      const r = await c.api.get(`${backup.url}/v1/jobs`).json<{ jobs: { id: string }[] }>();
      return r.jobs.every((j) => !j.id.startsWith("ret-"));
    }, { timeoutMs: 10_000 });

    const items = (await allHistory()).filter((i) => i.jobId.startsWith("ret-"));
    assert.deepEqual(items.map((i) => i.jobId).sort(), ["ret-0", "ret-1", "ret-2", "ret-fails"]);
    assert.equal(items.find((i) => i.jobId === "ret-fails")?.status, "failed");
    assert.ok(items.filter((i) => i.jobId !== "ret-fails").every((i) => i.status === "complete" && i.tasks === 3));

    const env = { TORCA_MANAGER: backup.url, TORCA_TOKEN: c.cell.token };
    const list = await runTorca(["history", "--since", "1h", "--json"], env);
    assert.equal(list.code, 0, list.stderr);
    assert.ok((JSON.parse(list.stdout) as { jobId: string }[]).some((i) => i.jobId === "ret-0"), "torca history, asked of a backup, lists the job (from the primary)");
    const failed = await runTorca(["history", "--state", "failed", "--json"], env);
    assert.deepEqual((JSON.parse(failed.stdout) as { jobId: string }[]).map((i) => i.jobId), ["ret-fails"]);
    const one = await runTorca(["history", "ret-0", "--json"], env);
    assert.equal(one.code, 0, one.stderr);
    const view = JSON.parse(one.stdout) as JobView & { live: unknown };
    assert.equal(view.live, null);
    assert.equal(view.versions.length, 1);
    assert.equal(view.runs.length, 1);
    assert.deepEqual(view.runs[0]!.tasks.map((t) => [t.state, t.exit?.exitCode, t.node !== null]), [["completed", 0, true], ["completed", 0, true], ["completed", 0, true]]);
    const usage = await runTorca(["usage", "--by", "namespace", "--since", "7d", "--json"], env);
    assert.equal(usage.code, 0, usage.stderr);
    const rows = JSON.parse(usage.stdout) as UsageRow[];
    assert.equal(rows.find((r) => r.key === "default")?.tasks, 11);
    assert.ok(rows[0]!.wallSeconds > 0, "wall time is counted");
  });

  test("a primary SIGKILLed right after its first archive of a burst loses nothing and doubles nothing", async () => {
    const { primary } = await c.steadyPrimary();
    const primaryId = c.cell.managerIdAt(primary.url);
    const log = join(c.cell.dir, "logs", `${primaryId}.log`);
    const archivedBefore = readFileSync(log, "utf8").split("\n").filter((l) => l.includes('"archived"')).length;
    for (let i = 0; i < 16; i++) {
      await c.submit(job(`burst-${i}`, 2));
      submitted.set(`burst-${i}`, 2);
    }
    await until("the primary's first archive of the burst", () => readFileSync(log, "utf8").split("\n").filter((l) => l.includes('"archived"')).length > archivedBefore, { timeoutMs: 120_000, intervalMs: 10 });
    await c.cell.stopDaemon(primaryId, "SIGKILL");
    const next = await c.cell.waitForPrimary(60_000);
    assert.notEqual(next.url, primary.url);
    await until("the burst to leave ZooKeeper under the new primary", () => gone("burst-"), { timeoutMs: 120_000, intervalMs: 250 });
    const items = (await allHistory()).filter((i) => i.jobId.startsWith("burst-"));
    assert.equal(items.length, 16, `each burst job archived once: ${items.map((i) => i.jobId).sort().join(" ")}`);
    assert.equal(new Set(items.map((i) => i.jobId)).size, 16);

    // The store itself, opened once the managers are gone (the embedded engine is one process's).
    const zk = await zookeeperFigures(c.cell.zookeeper!.port);
    for (const d of [...c.cell.daemons.values()].filter((x) => x.kind === "manager")) await c.cell.stopDaemon(d.id);
    const store = await HistoryStore.open(history());
    try {
      assert.equal(await store.countTasks(), [...submitted.values()].reduce((a, b) => a + b, 0), "every finished task is stored exactly once");
    } finally {
      await store.close();
    }
    assert.ok(zk.znodes > 0);
  });
});
