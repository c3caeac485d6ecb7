import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Got } from "got";
import { createHttpClient } from "../../src/common/http.js";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { LocalCell, type LeaderView, type LocalCellOptions } from "../../src/cell/local-cell.js";
import { until } from "./wait.js";
import { CgroupV1 } from "../../agent/driver/cgroup.js";
import { removeLeftoverPooledCgroups } from "../../agent/driver/cgroup-pool.js";
import { SimCell } from "../../bench/sim/sim-cell.js";

/**
 * Test harness: a real cell (ZooKeeper, managers, agents as processes) in a
 * temporary directory, and an API client that always talks to the current
 * primary. `close()` stops every process it started, by PID, and removes the
 * directory; call it from `after()` so it runs even when a test fails.
 */
export interface TestCell {
  cell: LocalCell;
  api: Got;
  primaryUrl(): Promise<string>;
  submit(yaml: string): Promise<{ id: string }>;
  job(id: string): Promise<Job & { taskList: TaskInstance[] }>;
  waitJob(id: string, pred: (j: Job & { taskList: TaskInstance[] }) => boolean, timeoutMs?: number, what?: string): Promise<Job & { taskList: TaskInstance[] }>;
  /**
   * A known starting point for a failover case: starts every manager that is
   * not running, then waits until one is primary and every other one answers
   * as a backup naming it. Returns the primary and the backups' ids.
   */
  steadyPrimary(timeoutMs?: number): Promise<{ primary: LeaderView; backups: string[] }>;
  close(): Promise<void>;
}

export async function startTestCell(opts: Partial<LocalCellOptions> = {}): Promise<TestCell> {
  const dir = mkdtempSync(join(tmpdir(), "torca-test-"));
  // A short disconnect grace: a killed agent's tasks move within seconds, as tests expect.
  const managerExtra = { disconnect: { grace: "5s" }, ...opts.managerExtra };
  const cell = new LocalCell({ managers: 2, agents: 1, agentDriver: "process", sessionTimeout: "2s", tickTimeMs: 1000, reportInterval: "1s", stopTasksOnExit: true, ...opts, managerExtra, dir });
  const close = async () => {
    await cell.stop().catch(() => undefined);
    // An agent a test killed with SIGKILL drained nothing: its idle task cgroups go with the cell.
    await Promise.all((cell.layout?.agents ?? []).map((a) => removeLeftoverPooledCgroups(new CgroupV1(), join(dir, a.id, "tasks")).catch(() => 0)));
    if (!process.env.TORCA_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await cell.start();
    await cell.waitForNodes(opts.agents ?? 1, 60_000);
  } catch (e) {
    await close();
    throw e;
  }
  const api = createHttpClient({ token: cell.token, timeoutMs: 10_000, retries: 0, followRedirect: false, ca: cell.ca });
  const primaryUrl = async () => (await cell.waitForPrimary(30_000)).url;
  const job = async (id: string) => api.get(`${await primaryUrl()}/v1/jobs/${encodeURIComponent(id)}`).json<Job & { taskList: TaskInstance[] }>();
  return {
    cell,
    api,
    primaryUrl,
    async submit(yaml: string) {
      return api.post(`${await primaryUrl()}/v1/jobs`, { body: yaml, headers: { "content-type": "application/yaml" } }).json<{ id: string }>();
    },
    job,
    async waitJob(id, pred, timeoutMs = 30_000, what = "condition") {
      let last: (Job & { taskList: TaskInstance[] }) | undefined;
      // A probe that throws (a failover in progress) counts as "not yet".
      return until(`job ${id}: ${what}`, async () => pred((last = await job(id))) && last, {
        timeoutMs,
        intervalMs: 100,
        show: () => last?.taskList.map((t) => ({ id: t.id, state: t.state, node: t.nodeId, attempt: t.attempt, reason: t.reason })),
      });
    },
    async steadyPrimary(timeoutMs = 60_000) {
      const managers = [...cell.daemons.values()].filter((d) => d.kind === "manager");
      for (const m of managers) if (!m.process || m.process.exitCode !== null || m.process.signalCode !== null) cell.startDaemon(m.id);
      return until(
        "a primary with every other manager following it as a backup",
        async () => {
          const primary = await cell.waitForPrimary(timeoutMs);
          const views = await Promise.all(managers.filter((m) => m.url !== primary.url).map(async (m) => ({ id: m.id, view: await cell.leaderAt(m.url) })));
          const following = views.every((b) => b.view && !b.view.isPrimary && b.view.url === primary.url && b.view.epoch === primary.epoch);
          return following && { primary, backups: views.map((b) => b.id) };
        },
        { timeoutMs, intervalMs: 100 },
      );
    },
    close,
  };
}

export function batchJob(name: string, command: string[], extra = ""): string {
  return `name: ${name}\ntype: batch\nisolation: process\ncommand: ${JSON.stringify(command)}\nresources: { cpu: 0.1, memory: 32MiB }\n${extra}`;
}

/**
 * One loopback address per daemon, as if each ran on its own host: the
 * managers on 127.0.0.`first`…, then the agents, then the cell's ZooKeeper
 * (pass the result as `hosts` to startTestCell).
 */
export function ownAddresses(managers: number, agents: number, first = 2): Record<string, string> {
  const ids = [...Array.from({ length: managers }, (_, i) => `manager-${i + 1}`), ...Array.from({ length: agents }, (_, i) => `agent-${i + 1}`), "zookeeper"];
  return Object.fromEntries(ids.map((id, i) => [id, `127.0.0.${first + i}`]));
}

/** `machines` simulated agents (bench/sim) registered with a test cell started with no agents of its own; stop them before the cell. */
export async function startSimulatedMachines(c: TestCell, machines: number): Promise<SimCell> {
  const sim = new SimCell({ zookeeper: c.cell.zookeeper!.connectString, auth: c.cell.zookeeperAuth, token: c.cell.token, managerToken: c.cell.managerToken, agents: machines, reportIntervalMs: 1000, sessionTimeoutMs: 2000, batchRunMs: 300 });
  await sim.start();
  await c.cell.waitForNodes(machines, 60_000);
  return sim;
}

