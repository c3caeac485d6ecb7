import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Agent } from "node:http";
import { HTTPError, RequestError, type Got } from "got";
import { readRecordSync } from "../../agent/tasks/record.js";
import type { ZkSession } from "../../src/coord/zk.js";
import type { TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";
import { pidAlive } from "../../src/common/process.js";

/**
 * What the fault suite observes from outside the system: the fate of each
 * submission as the client saw it, the znodes in ZooKeeper, and the task
 * instances each agent actually started (its task directories).
 */

/**
 * acked: 201, the job is durable. refused: the request certainly stored
 * nothing (no primary answered it, or the answer said so before any write).
 * failed: an error answer after the write may have been attempted (503
 * coordination). unknown: the connection broke with the request in flight.
 */
export type SubmitFate = "acked" | "refused" | "failed" | "unknown";

export interface SubmitOutcome {
  name: string;
  fate: SubmitFate;
  status?: number;
  code?: string;
  message?: string;
  at: number;
  ms: number;
}

function errorBody(e: HTTPError): { code?: string; message?: string } {
  try {
    const body = JSON.parse(String(e.response.body)) as { error?: { code?: string; message?: string } };
    return body.error ?? {};
  } catch {
    return {};
  }
}

/**
 * A connection of its own per request: a request parked on an idle keep-alive
 * socket of a frozen server is cut when the server wakes (its keep-alive
 * timeout has passed) instead of being served, which is not what we test.
 */
export const freshConnections = new Agent({ keepAlive: false });

/** One POST /v1/jobs (with an Idempotency-Key when given), classified; never throws. */
export async function submitOnce(api: Got, url: string, name: string, yaml: string, timeoutMs = 15_000, idempotencyKey?: string): Promise<SubmitOutcome> {
  const at = Date.now();
  try {
    const headers = { "content-type": "application/yaml", ...(idempotencyKey ? { "idempotency-key": idempotencyKey } : {}) };
    await api.post(`${url}/v1/jobs`, { body: yaml, headers, timeout: { request: timeoutMs }, retry: { limit: 0 }, followRedirect: false, agent: { http: freshConnections } });
    return { name, fate: "acked", status: 201, at, ms: Date.now() - at };
  } catch (e) {
    const ms = Date.now() - at;
    if (e instanceof HTTPError) {
      const status = e.response.statusCode;
      const { code, message } = errorBody(e);
      // A backup (307) or a manager without a primary (503 not_primary) wrote nothing.
      const fate: SubmitFate = code === "not_primary" || status === 307 ? "refused" : "failed";
      return { name, fate, status, ...(code ? { code } : {}), ...(message ? { message } : {}), at, ms };
    }
    const code = e instanceof RequestError ? e.code : undefined;
    const message = e instanceof Error ? e.message : String(e);
    return { name, fate: code === "ECONNREFUSED" ? "refused" : "unknown", ...(code ? { code } : {}), message, at, ms };
  }
}

/** Counts by a key, as "k1 n1, k2 n2" (for the printed figures). */
export function tally<T>(items: T[], key: (x: T) => string): string {
  const m = new Map<string, number>();
  for (const x of items) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
}

/**
 * Every znode under `root` as path → "mzxid/version/cversion/numChildren":
 * any write (data, create, delete of a child) changes its line. Subtrees in
 * `skip` are left out (agents rewrite their znodes every report).
 */
export async function znodeSnapshot(zk: ZkSession, root: string, skip: string[] = []): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (path: string): Promise<void> => {
    if (skip.some((s) => path === s || path.startsWith(s + "/"))) return;
    const stat = await zk.exists(path);
    if (!stat) return;
    out.set(path, `${stat.mzxid}/${stat.version}/${stat.cversion}/${stat.numChildren}`);
    const children = await zk.children(path);
    for (let i = 0; i < children.length; i += 100) await Promise.all(children.slice(i, i + 100).map((c) => walk(`${path}/${c}`)));
  };
  await walk(root);
  return out;
}

/** Paths whose line differs between two snapshots (added, removed or changed). */
export function snapshotDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const diff: string[] = [];
  for (const [p, v] of a) if (b.get(p) !== v) diff.push(b.has(p) ? `changed ${p}` : `removed ${p}`);
  for (const p of b.keys()) if (!a.has(p)) diff.push(`added ${p}`);
  return diff;
}

export interface StartedInstance {
  agent: string;
  taskId: string;
  attempt: number;
  state: string;
  pid?: number;
}

/**
 * The instances an agent accepted, from its task directories (one per
 * (task, attempt) it was told to start; kept for an hour after exit).
 */
export function startedInstances(cellDir: string, agent: string): StartedInstance[] {
  const dir = join(cellDir, agent, "tasks");
  if (!existsSync(dir)) return [];
  const out: StartedInstance[] = [];
  for (const name of readdirSync(dir)) {
    // undefined: a directory whose first record is being written right now; the next read sees it.
    const r = readRecordSync(join(dir, name));
    if (r) out.push({ agent, taskId: r.dispatch.taskId, attempt: r.dispatch.attempt, state: r.state, ...(r.handle ? { pid: r.handle.pid } : {}) });
  }
  return out;
}

/** Task ids with more than one started instance across the given agents. */
export function duplicates(instances: StartedInstance[]): Map<string, StartedInstance[]> {
  const by = new Map<string, StartedInstance[]>();
  for (const i of instances) by.set(i.taskId, [...(by.get(i.taskId) ?? []), i]);
  return new Map([...by].filter(([, v]) => v.length > 1));
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * Ends the task processes the cell's agents left running (the suite's agents
 * keep their tasks when they stop, which is what it tests): each task leads
 * its own process group under its wrapper; both are signalled by the PIDs the
 * agents recorded. Returns the PIDs signalled.
 */
function stopLeftoverTasks(instances: StartedInstance[]): number[] {
  const signalled: number[] = [];
  for (const i of instances) {
    if (i.state === "exited" || !i.pid || !pidAlive(i.pid)) continue;
    signalled.push(i.pid);
    let children: number[] = [];
    try {
      children = readFileSync(`/proc/${i.pid}/task/${i.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      /* exited meanwhile */
    }
    for (const child of children) {
      signalled.push(child);
      try {
        process.kill(-child, "SIGKILL");
      } catch {
        /* not a group leader, or gone */
      }
    }
    try {
      process.kill(i.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  return signalled;
}

/**
 * Closes a cell whose agents keep their tasks when they stop: the managers go
 * first (nothing more is dispatched, nothing ended is restarted), then the
 * tasks still running end (by the PIDs the agents recorded), then the rest,
 * so neither a process nor a task cgroup outlives the cell.
 */
export async function closeCellAndTasks(c: TestCell | undefined): Promise<void> {
  if (!c) return;
  for (const m of c.cell.layout?.managers ?? []) await c.cell.stopDaemon(m.id).catch(() => undefined);
  const signalled = stopLeftoverTasks((c.cell.layout?.agents ?? []).flatMap((a) => startedInstances(c.cell.dir, a.id)));
  // Reaped, they have left their cgroups, which the cell's close then removes.
  await until("the leftover tasks to be gone", () => signalled.every((pid) => !pidAlive(pid)), { timeoutMs: 10_000, intervalMs: 50 }).catch(() => undefined);
  await c.close();
}
