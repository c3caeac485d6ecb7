import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { readJsonIfValid } from "../../src/common/json.js";
import type { Logger } from "../../src/common/logger.js";
import { TaskDispatchSchema, type TaskDispatch } from "../../src/common/protocol.js";
import type { TaskHandle } from "../driver/driver.js";

/**
 * The task record the runner keeps per (task, attempt) in the task's
 * directory (`record.json`), read back by a restarted agent to re-adopt the
 * task or learn the exit it missed.
 */

export const RECORD_FILE = "record.json";

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
});
export type StoredTaskRecord = z.output<typeof TaskRecordSchema>;

/** The record in `dir`; undefined when there is none, or (with a warning) when it is unreadable. */
export async function readRecord(dir: string, log?: Logger): Promise<StoredTaskRecord | undefined> {
  const path = join(dir, RECORD_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  return readJsonIfValid(TaskRecordSchema, text, path, (e) => log?.warn({ err: e }, "ignoring an unreadable task record"));
}
