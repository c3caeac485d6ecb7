import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { IntegrityError } from "../../src/common/errors.js";
import { readJsonIfValid } from "../../src/common/json.js";
import type { Logger } from "../../src/common/logger.js";
import { TaskDispatchSchema, type TaskDispatch } from "../../src/common/protocol.js";
import type { TaskHandle } from "../driver/driver.js";
import type { TaskRecord } from "./runner.js";

/**
 * The task record the runner keeps per (task, attempt) in the task's
 * directory, read back by a restarted agent to re-adopt the task or learn the
 * exit it missed.
 *
 * Its writes alternate between two files, each overwritten in place, and
 * carry a sequence number: the newest readable one is the record. A write cut
 * short (an agent killed between truncating a file and writing it) leaves the
 * previous record in the other file, as a write of a temporary file and a
 * rename would, without the new file and the freed one every write of that
 * kind makes: on a file system without a journal, ext4 skips inodes freed in
 * the last 35 s when it allocates one, and with thousands freed by short tasks
 * the scan past them was a fifth of the machine's CPU while tasks started.
 */

/** The record's two files; writes 0, 2, 4… go to the first, the one agents before the alternation wrote (read as write 0). */
export const RECORD_FILES = ["record.json", "record.b.json"] as const;

const TaskHandleSchema = z
  .object({
    driver: z.enum(["lxc", "process"]),
    taskId: z.string().min(1),
    attempt: z.number().int().min(0),
    taskDir: z.string().min(1),
    pid: z.number().int(),
    containerName: z.string().optional(),
    lxcPath: z.string().optional(),
    startedAt: z.number(),
    cgroup: z.string().optional(),
    members: z.array(z.object({ name: z.string().min(1), pid: z.number().int(), dir: z.string().min(1), cgroup: z.string().optional() })).optional(),
  })
  .passthrough() satisfies z.ZodType<TaskHandle, z.ZodTypeDef, unknown>;

export const TaskRecordSchema = z.object({
  // The dispatch as the agent API admitted it (its spec validated by the manager at submission).
  dispatch: TaskDispatchSchema.transform((d) => d as unknown as TaskDispatch),
  state: z.enum(["starting", "running", "exited"]),
  dir: z.string().min(1),
  handle: TaskHandleSchema.optional(),
  ports: z.record(z.number().int()),
  exit: z.object({ exitCode: z.number().int().nullable(), signal: z.string().nullable(), oomKilled: z.boolean(), reason: z.string() }).optional(),
  error: z.string().optional(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  stopRequested: z.boolean().optional(),
  exitRecorded: z.boolean().optional(),
  // The uid the attempt runs as: a restarted agent holds it again until the attempt's processes are gone.
  user: z.object({ uid: z.number().int().min(0), gid: z.number().int().min(0) }).optional(),
  members: z.array(z.object({ name: z.string(), state: z.enum(["running", "exited"]), exit: z.object({ exitCode: z.number().int().nullable(), signal: z.string().nullable(), oomKilled: z.boolean(), reason: z.string() }).optional() })).optional(),
  // Which write of the record this is: it went to RECORD_FILES[seq % 2].
  seq: z.number().int().min(0).optional(),
  // Reported with an exit a restarted agent still owes the primary: usage totals, and an eviction that is no failure.
  finalUsage: z.object({ cpuNs: z.number().optional(), memoryPeakBytes: z.number().optional() }).optional(),
  evicted: z.string().optional(),
});
export type StoredTaskRecord = z.output<typeof TaskRecordSchema>;

/** Names the runner's record fields the schema would strip on recovery; compiles only while there are none. */
type UnstoredFields = Exclude<keyof TaskRecord, keyof StoredTaskRecord>;
export const EVERY_RECORD_FIELD_STORED: [UnstoredFields] extends [never] ? true : UnstoredFields = true;

/** The file the record's write number `seq` goes to (the other holds the write before it). */
export function recordFileOf(dir: string, seq: number): string {
  return join(dir, RECORD_FILES[seq % 2]!);
}

/**
 * The record in `dir`: the newest of its files that reads; undefined when there is none, or (with a
 * warning) when no file of it reads. A file that does not read beside one that does is a write cut short.
 */
export async function readRecord(dir: string, log?: Logger): Promise<StoredTaskRecord | undefined> {
  const texts = await Promise.all(RECORD_FILES.map((name) => readFile(join(dir, name), "utf8").catch(() => undefined)));
  return newestRecord(dir, texts, log);
}

/** readRecord for tests and tools that read an agent's disk from outside. */
export function readRecordSync(dir: string, log?: Logger): StoredTaskRecord | undefined {
  const texts = RECORD_FILES.map((name) => {
    try {
      return readFileSync(join(dir, name), "utf8");
    } catch {
      return undefined;
    }
  });
  return newestRecord(dir, texts, log);
}

function newestRecord(dir: string, texts: (string | undefined)[], log: Logger | undefined): StoredTaskRecord | undefined {
  const corrupt: IntegrityError[] = [];
  let newest: StoredTaskRecord | undefined;
  texts.forEach((text, i) => {
    if (text === undefined) return;
    const r = readJsonIfValid(TaskRecordSchema, text, join(dir, RECORD_FILES[i]!), (e) => corrupt.push(e));
    if (r && (!newest || (r.seq ?? 0) > (newest.seq ?? 0))) newest = r;
  });
  if (!newest) for (const e of corrupt) log?.warn({ err: e }, "ignoring an unreadable task record");
  return newest;
}
