import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { IntegrityError } from "../common/errors.js";
import { readJsonIfValid } from "../common/json.js";

/**
 * What a master leaves for the next one: `<statusDir>/master-daemons.json`,
 * rewritten (synchronously, write-then-rename) on every change of a daemon.
 * A master restarted after a crash finds there the daemons its predecessor
 * left running, each by PID and start time, and adopts them instead of
 * starting duplicates; and each daemon's restart history, so a crash loop
 * that was alerted stays alerted (one alert per episode across restarts of
 * the master itself).
 */

export const MASTER_RECORDS_FILE = "master-daemons.json";

const exitRecord = z.object({
  at: z.number(),
  code: z.number().nullable(),
  signal: z.string().nullable(),
  uptimeMs: z.number(),
  error: z.string().optional(),
  statusUnknown: z.literal(true).optional(),
});

const daemonRecord = z.object({
  name: z.string(),
  command: z.array(z.string()),
  /** The running process, if any: its PID and its start time in clock ticks since boot (/proc/PID/stat). */
  pid: z.number().int().positive().optional(),
  pidStartTime: z.number().optional(),
  startedAt: z.number().optional(),
  restarts: z.number().int().min(0),
  consecutiveFailures: z.number().int().min(0),
  recentExits: z.array(exitRecord),
  lastExit: exitRecord.optional(),
  crashLoopReported: z.boolean(),
  /** In backoff: when the next start is due. */
  nextStartAt: z.number().optional(),
});

const recordsFile = z.object({ masterPid: z.number(), writtenAt: z.number(), daemons: z.array(daemonRecord) });

export type DaemonRecord = z.infer<typeof daemonRecord>;

export function writeDaemonRecords(dir: string, daemons: DaemonRecord[]): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const file = join(dir, MASTER_RECORDS_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ masterPid: process.pid, writtenAt: Date.now(), daemons }, null, 2) + "\n", { mode: 0o644 });
  renameSync(tmp, file);
}

/** The records an earlier master left in `dir`; empty when there are none or they are unreadable (after telling `onCorrupt`). */
export function readDaemonRecords(dir: string, onCorrupt?: (e: IntegrityError) => void): DaemonRecord[] {
  let text: string;
  try {
    text = readFileSync(join(dir, MASTER_RECORDS_FILE), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  return readJsonIfValid(recordsFile, text, join(dir, MASTER_RECORDS_FILE), onCorrupt)?.daemons ?? [];
}
