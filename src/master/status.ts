import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DaemonStatus } from "./supervisor.js";
import { pidAlive } from "../common/process.js";

/**
 * How `torca master status` learns what the master is doing: the master
 * rewrites `<statusDir>/master-status.json` on every daemon state change and
 * every few seconds. A file rather than an HTTP port: nothing to bind or
 * secure, readable by anyone with access to the directory (and by nobody
 * else), and still there to read after the master died.
 *
 * Freshness: `readMasterStatus` checks whether the master's PID is alive; a
 * status from a dead master is returned with `running: false` and its daemon
 * states marked as last known.
 */

export const MASTER_STATUS_FILE = "master-status.json";

export interface MasterStatus {
  /** The master's own PID. */
  pid: number;
  startedAt: number;
  /** When this file was written (uptimes in `daemons` are as of then). */
  writtenAt: number;
  /** "running" until a stop begins, then "stopping", then "stopped". */
  state: "running" | "stopping" | "stopped";
  daemons: DaemonStatus[];
}

export interface MasterStatusReading extends MasterStatus {
  /** The master process is alive now. */
  running: boolean;
  /** Milliseconds since the file was written. */
  ageMs: number;
}

export async function writeMasterStatus(dir: string, status: MasterStatus): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const file = join(dir, MASTER_STATUS_FILE);
  // Write-then-rename: a reader never sees a half-written file.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(status, null, 2) + "\n", { mode: 0o644 });
  await rename(tmp, file);
}

/** undefined when no master has written status in `dir`. */
export async function readMasterStatus(dir: string, now = Date.now()): Promise<MasterStatusReading | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, MASTER_STATUS_FILE), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  const status = JSON.parse(text) as MasterStatus;
  const running = status.state !== "stopped" && pidAlive(status.pid);
  return { ...status, running, ageMs: now - status.writtenAt };
}

/** Human-readable lines for `torca master status`. */
export function formatMasterStatus(s: MasterStatusReading): string {
  const head = s.running ? `master pid ${s.pid}: ${s.state}` : `master pid ${s.pid}: not running (status as of ${new Date(s.writtenAt).toISOString()})`;
  const rows = s.daemons.map((d) => {
    const parts = [d.name.padEnd(10), d.state.padEnd(8), d.pid !== undefined ? `pid ${d.pid}` : "-", `restarts ${d.restarts}`];
    if (d.uptimeMs !== undefined) parts.push(`up ${Math.round(d.uptimeMs / 1000)}s`);
    if (d.adopted) parts.push("adopted");
    if (d.lastExit) parts.push(`last exit ${d.lastExit.error ?? (d.lastExit.statusUnknown ? "status unknown" : d.lastExit.signal ? `signal ${d.lastExit.signal}` : `code ${d.lastExit.code}`)}`);
    if (d.crashLooping) parts.push("CRASH-LOOPING");
    return "  " + parts.join("  ");
  });
  return [head, ...rows].join("\n");
}
