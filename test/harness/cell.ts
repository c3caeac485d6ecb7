import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Got } from "got";
import { createHttpClient } from "../../src/common/http.js";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { LocalCell, type LocalCellOptions } from "../../src/cell/local-cell.js";

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
  close(): Promise<void>;
}

export async function startTestCell(opts: Partial<LocalCellOptions> = {}): Promise<TestCell> {
  const dir = mkdtempSync(join(tmpdir(), "torca-test-"));
  const cell = new LocalCell({ managers: 2, agents: 1, agentDriver: "process", sessionTimeout: "2s", tickTimeMs: 1000, reportInterval: "1s", stopTasksOnExit: true, ...opts, dir });
  const close = async () => {
    await cell.stop().catch(() => undefined);
    if (!process.env.TORCA_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await cell.start();
    await cell.waitForNodes(opts.agents ?? 1, 60_000);
  } catch (e) {
    await close();
    throw e;
  }
  const api = createHttpClient({ token: cell.token, timeoutMs: 10_000, retries: 0, followRedirect: false });
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
      const deadline = Date.now() + timeoutMs;
      let last: (Job & { taskList: TaskInstance[] }) | undefined;
      while (Date.now() < deadline) {
        try {
          last = await job(id);
          if (pred(last)) return last;
        } catch {
          /* failover in progress */
        }
        await sleep(100);
      }
      throw new Error(`job ${id}: ${what} not reached within ${timeoutMs} ms; last: ${JSON.stringify(last?.taskList.map((t) => ({ id: t.id, state: t.state, node: t.nodeId, attempt: t.attempt, reason: t.reason })))}`);
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
