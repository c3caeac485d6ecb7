/**
 * Retention soak: N short batch tasks through a local cell with a short
 * retention. Afterwards ZooKeeper holds no finished job (its znode count back
 * within a constant of where it started), the history store holds every task
 * exactly once, and the archived usage adds up to what the agents read from
 * the cgroups (their own task records). Prints ZooKeeper's znode count and
 * data size before and after, and the archival rate through the primary.
 *
 *   node dist/test/soak/retention-soak.js [TASKS] [embedded|postgres]
 *   (npm run test:soak: 20,000 tasks on each engine; postgres is a real server
 *   the harness starts on a free loopback port)
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RECORD_FILES } from "../../agent/tasks/record.js";
import { LocalCell } from "../../src/cell/local-cell.js";
import { createHttpClient } from "../../src/common/http.js";
import type { HistoryConfig } from "../../src/common/config.js";
import { HistoryStore } from "../../src/history/store.js";
import type { UsageRow } from "../../src/history/queries.js";
import { jobsInZooKeeper, zookeeperFigures, znodesByBranch } from "../harness/zk-size.js";
import { until } from "../harness/wait.js";
import { startPostgres, type TestPostgres } from "../harness/postgres.js";
import { AUDIT_MAX_ENTRIES } from "../../src/auth/audit.js";

export type SoakEngine = HistoryConfig["engine"];

export const TASKS_PER_JOB = 100;
/** znodes the cell keeps whatever it runs (election, agents, nodes, packages, alerts…), as slack for the "within a constant" check. */
export const ZNODE_SLACK = 50;
/** The audit log is bounded on its own (src/auth/audit.ts): one entry per submission, up to this many, plus its parent. */
const AUDIT_BRANCH = "audit";

export interface SoakFigures {
  tasks: number;
  engine: SoakEngine;
  seconds: number;
  zookeeperBefore: { znodes: number; dataBytes: number };
  zookeeperAfter: { znodes: number; dataBytes: number };
  /** Znodes per branch of the Torca root, before and after: where any growth stayed. */
  branchesBefore: Record<string, number>;
  branchesAfter: Record<string, number>;
  /** Peak seen while the soak ran. */
  zookeeperPeak: { znodes: number; dataBytes: number };
  jobsLeftInZooKeeper: number;
  tasksStored: number;
  archives: number;
  archivedTasksPerSecond: number;
  cpuSecondsArchived: number;
  cpuSecondsAgents: number;
  wallSecondsArchived: number;
  wallSecondsAgents: number;
}

/** What the agents themselves recorded of each finished attempt: final cgroup CPU time and wall time. */
function agentReadings(cellDir: string, agentIds: string[]): { cpuSeconds: number; wallSeconds: number } {
  let cpuNs = 0;
  let wallMs = 0;
  for (const id of agentIds) {
    const dir = join(cellDir, id, "tasks");
    for (const t of readdirSync(dir)) {
      // Read whole (the record schema leaves finalUsage out): the newest of the record's files that parses.
      type Rec = { seq?: number; state?: string; startedAt?: number; finishedAt?: number; finalUsage?: { cpuNs?: number } };
      const rec = RECORD_FILES.map((f): Rec | undefined => {
        try {
          return JSON.parse(readFileSync(join(dir, t, f), "utf8")) as Rec;
        } catch {
          return undefined;
        }
      }).reduce<Rec | undefined>((newest, r) => (r && (!newest || (r.seq ?? 0) > (newest.seq ?? 0)) ? r : newest), undefined);
      if (rec?.state !== "exited") continue;
      cpuNs += rec.finalUsage?.cpuNs ?? 0;
      if (rec.startedAt !== undefined && rec.finishedAt !== undefined) wallMs += rec.finishedAt - rec.startedAt;
    }
  }
  return { cpuSeconds: cpuNs / 1e9, wallSeconds: wallMs / 1000 };
}

/** (time, tasks, tasks newly stored) of every archive the managers logged (a repeated archive stores none). */
function archiveLog(cellDir: string, managerIds: string[]): { time: number; tasks: number; stored: number }[] {
  return managerIds.flatMap((id) =>
    readFileSync(join(cellDir, "logs", `${id}.log`), "utf8")
      .split("\n")
      .filter((l) => l.includes('"msg":"archived"'))
      .map((l) => JSON.parse(l) as { time: number; tasks: number; stored: number }),
  );
}

export async function runSoak(tasks: number, o: { agents?: number; engine?: SoakEngine; log?: (s: string) => void } = {}): Promise<SoakFigures> {
  const log = o.log ?? ((s: string) => process.stdout.write(`${s}\n`));
  const dir = mkdtempSync(join(tmpdir(), "torca-soak-"));
  const agents = o.agents ?? 2;
  const engine = o.engine ?? "embedded";
  let server: TestPostgres | undefined;
  let history: HistoryConfig;
  if (engine === "postgres") {
    server = await startPostgres();
    history = await server.historyDatabase("torca_soak");
  } else {
    history = { engine: "embedded", dir: join(dir, "history") };
  }
  const cell = new LocalCell({
    dir,
    managers: 1,
    agents,
    agentDriver: "process",
    sessionTimeout: "6s",
    reportInterval: "1s",
    stopTasksOnExit: true,
    managerExtra: { retention: { terminal: "2s", keepPerNamespace: 1000, batch: 200 }, history },
  });
  try {
    await cell.start();
    await cell.waitForNodes(agents, 60_000);
    await cell.waitForPrimary(60_000);
    const api = createHttpClient({ token: cell.token, timeoutMs: 60_000, retries: 2, followRedirect: false });
    const zookeeperBefore = await zookeeperFigures(cell.zookeeper!.port);
    const branchesBefore = await znodesByBranch(cell.zookeeperConnect, cell.zookeeperAuth);
    log(`zookeeper before: ${zookeeperBefore.znodes} znodes, ${zookeeperBefore.dataBytes} bytes`);
    const t0 = Date.now();
    const jobs = Math.ceil(tasks / TASKS_PER_JOB);
    let submitted = 0;
    for (let j = 0; j < jobs; j++) {
      const n = Math.min(TASKS_PER_JOB, tasks - submitted);
      submitted += n;
      const yaml = `name: soak-${j}\ntype: batch\ninstances: ${n}\nisolation: process\ncommand: [/bin/sh, -c, "i=0; while [ $i -lt 200 ]; do i=$((i+1)); done"]\nrestart: { attempts: 0 }\nresources: { cpu: 0.01, memory: 8MiB }\n`;
      // Through a failover too (a loaded machine may cost the primary its session): to whoever is primary now.
      await until(`soak-${j} submitted`, async () => {
        const url = (await cell.waitForPrimary(60_000)).url;
        const r = await api.post(`${url}/v1/jobs`, { body: yaml, headers: { "content-type": "application/yaml" }, throwHttpErrors: false });
        return r.statusCode === 201 || r.statusCode === 409;
      }, { timeoutMs: 120_000, intervalMs: 500 });
    }
    log(`submitted ${tasks} tasks in ${jobs} jobs`);
    let peak = zookeeperBefore;
    let lastReport = 0;
    await until(
      "every soak job to leave ZooKeeper",
      async () => {
        const z = await zookeeperFigures(cell.zookeeper!.port);
        if (z.znodes > peak.znodes) peak = z;
        const left = (await jobsInZooKeeper(cell.zookeeperConnect, cell.zookeeperAuth)).jobs.filter((x) => x.startsWith("soak-")).length;
        if (Date.now() - lastReport > 30_000) {
          lastReport = Date.now();
          log(`${Math.round((Date.now() - t0) / 1000)} s: ${left} job(s) left in ZooKeeper, ${z.znodes} znodes`);
        }
        return left === 0;
      },
      { timeoutMs: Math.max(300_000, tasks * 200), intervalMs: 1000 },
    );
    const seconds = (Date.now() - t0) / 1000;
    const zookeeperAfter = await zookeeperFigures(cell.zookeeper!.port);
    const branchesAfter = await znodesByBranch(cell.zookeeperConnect, cell.zookeeperAuth);
    const usage = await api.get(`${(await cell.waitForPrimary(60_000)).url}/v1/usage?by=namespace`).json<UsageRow[]>();
    const managerIds = [...cell.daemons.values()].filter((d) => d.kind === "manager").map((d) => d.id);
    const agentIds = [...cell.daemons.values()].filter((d) => d.kind === "agent").map((d) => d.id);
    for (const id of managerIds) await cell.stopDaemon(id);
    const store = await HistoryStore.open(history);
    const tasksStored = await store.countTasks().finally(() => store.close());
    const archives = archiveLog(dir, managerIds);
    const span = archives.length > 1 ? (archives.at(-1)!.time - archives[0]!.time) / 1000 : 0;
    const readings = agentReadings(dir, agentIds);
    const figures: SoakFigures = {
      tasks,
      engine,
      seconds,
      zookeeperBefore,
      zookeeperAfter,
      branchesBefore,
      branchesAfter,
      zookeeperPeak: peak,
      jobsLeftInZooKeeper: (await jobsInZooKeeper(cell.zookeeperConnect, cell.zookeeperAuth)).jobs.length,
      tasksStored,
      archives: archives.length,
      archivedTasksPerSecond: span > 0 ? archives.reduce((a, x) => a + x.stored, 0) / span : 0,
      cpuSecondsArchived: usage.reduce((a, r) => a + r.cpuSeconds, 0),
      cpuSecondsAgents: readings.cpuSeconds,
      wallSecondsArchived: usage.reduce((a, r) => a + r.wallSeconds, 0),
      wallSecondsAgents: readings.wallSeconds,
    };
    log(JSON.stringify(figures, null, 2));
    return figures;
  } finally {
    await cell.stop().catch(() => undefined);
    await server?.stop();
    if (!process.env.TORCA_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  }
}

/** The soak's pass conditions; a list of what failed (empty: passed). */
export function soakFailures(f: SoakFigures): string[] {
  const within5 = (a: number, b: number) => Math.abs(a - b) <= 0.05 * Math.max(a, b);
  const out: string[] = [];
  if (f.jobsLeftInZooKeeper !== 0) out.push(`${f.jobsLeftInZooKeeper} job(s) still in ZooKeeper`);
  // Everything but the audit log comes back to where it was, within a constant; the audit log stays within its own bound.
  const audit = (f.branchesAfter[AUDIT_BRANCH] ?? 0) - (f.branchesBefore[AUDIT_BRANCH] ?? 0);
  if (f.zookeeperAfter.znodes - audit > f.zookeeperBefore.znodes + ZNODE_SLACK) out.push(`znodes after ${f.zookeeperAfter.znodes} (${audit} of them audit entries), before ${f.zookeeperBefore.znodes} (by branch, before ${JSON.stringify(f.branchesBefore)}, after ${JSON.stringify(f.branchesAfter)})`);
  if ((f.branchesAfter[AUDIT_BRANCH] ?? 0) > AUDIT_MAX_ENTRIES + 1) out.push(`the audit log holds ${f.branchesAfter[AUDIT_BRANCH]} znodes, over its bound of ${AUDIT_MAX_ENTRIES}`);
  if (f.tasksStored !== f.tasks) out.push(`${f.tasksStored} tasks stored for ${f.tasks} finished`);
  if (!within5(f.cpuSecondsArchived, f.cpuSecondsAgents)) out.push(`CPU seconds archived ${f.cpuSecondsArchived}, agents read ${f.cpuSecondsAgents}`);
  if (!within5(f.wallSecondsArchived, f.wallSecondsAgents)) out.push(`wall seconds archived ${f.wallSecondsArchived}, agents recorded ${f.wallSecondsAgents}`);
  return out;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const tasks = Number(process.argv[2] ?? 20_000);
  const engines = process.argv[3] === undefined ? (["embedded", "postgres"] as const) : [process.argv[3] as SoakEngine];
  let failed = false;
  for (const engine of engines) {
    const failures = soakFailures(await runSoak(tasks, { engine }));
    failed ||= failures.length > 0;
    process.stdout.write(failures.length ? `SOAK FAILED (${engine}):\n  ${failures.join("\n  ")}\n` : `soak passed: ${tasks} tasks, ${engine}\n`);
  }
  process.exitCode = failed ? 1 : 0;
}
