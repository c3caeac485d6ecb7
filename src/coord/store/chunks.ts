import { z } from "zod";
import { IntegrityError } from "../../common/errors.js";
import { readJson } from "../../common/json.js";
import { TaskInstanceSchema } from "../../common/schemas/state.js";
import type { TaskInstance } from "../../common/types.js";
import { compileCheck } from "./fast-check.js";

/**
 * Task records of one job are stored in chunk znodes, `<job>/tasks/c<k>`
 * holding the records of indexes [k·W, (k+1)·W) as one JSON array sorted by
 * index, so one compare-and-set commits many task changes. W, the job's
 * records per chunk, is fixed when the job is created and kept in its tasks
 * node (`{"recordsPerChunk":W}`); a tasks node without it is of the first
 * chunk layout, W = 64, so state written before W was recorded reads as it
 * was written.
 *
 * Why W = 16 for new jobs: a change to one record rewrites its whole chunk,
 * and in a large cell the records changing together (the tasks one report
 * names, a machine's of many jobs) seldom share a chunk, so a write carries
 * W records of which one changed. Every byte is written to ZooKeeper's log
 * and re-read by every backup. A round's placements of one job still share
 * chunks, 16 to a write.
 *
 * Sizes: a fresh record is about 350 bytes, a dispatched one with ports and
 * usage about 700, and one with the full 30 events about 3 KiB. A record is
 * trimmed to at most MAX_RECORD_BYTES (fitRecord), so no chunk, even of the
 * first layout, can pass 64 × 8 KiB = 512 KiB, half of ZooKeeper's packet
 * limit (jute.maxbuffer, 1 MiB), which a larger write would make the server
 * close the session over.
 */
export const RECORDS_PER_CHUNK = 16;
/** Records per chunk of a tasks node that does not say (the first chunk layout). */
export const FIRST_LAYOUT_RECORDS_PER_CHUNK = 64;
export const MAX_RECORD_BYTES = 8 * 1024;
/** Past this a chunk is refused before it is sent (only records that cannot be trimmed could reach it). */
export const MAX_CHUNK_BYTES = 768 * 1024;
/** Event messages and reasons of an oversized record are cut to this many characters. */
const TRIMMED_TEXT = 240;

const ChunkSchema = z.array(TaskInstanceSchema);
const isTaskRecord = compileCheck(TaskInstanceSchema);
const TasksLayoutSchema = z.object({ recordsPerChunk: z.number().int().min(1).max(FIRST_LAYOUT_RECORDS_PER_CHUNK) });

/** The tasks node's data for a job created with `width` records per chunk. */
export function encodeTasksLayout(width: number): string {
  return JSON.stringify({ recordsPerChunk: width });
}

/** Records per chunk from a tasks node's data (empty: the first layout). */
export function decodeTasksLayout(data: Buffer, where: string): number {
  if (data.length === 0) return FIRST_LAYOUT_RECORDS_PER_CHUNK;
  return readJson(TasksLayoutSchema, data, where).recordsPerChunk;
}

export function chunkOf(index: number, width: number): number {
  return Math.floor(index / width);
}

/** The indexes chunk `k` holds. */
export function chunkRange(k: number, width: number): { first: number; end: number } {
  return { first: k * width, end: (k + 1) * width };
}

/** A child of a job's tasks node: a chunk (`c<k>`), a record of the per-index layout before chunks (`<index>`), or something else. */
export type TasksChild = { kind: "chunk"; k: number } | { kind: "legacy"; index: number } | { kind: "other" };

export function parseTasksChild(name: string): TasksChild {
  if (/^c\d+$/.test(name)) return { kind: "chunk", k: Number(name.slice(1)) };
  if (/^\d+$/.test(name)) return { kind: "legacy", index: Number(name) };
  return { kind: "other" };
}

/**
 * Each record's JSON, made once per record object: a chunk write serializes
 * its whole range, and most of it is unchanged since the last write.
 * Invariant this relies on: task records are never mutated once made (every
 * change is a new object).
 */
const recordJson = new WeakMap<TaskInstance, string>();

export function jsonOfRecord(t: TaskInstance): string {
  let json = recordJson.get(t);
  if (json === undefined) recordJson.set(t, (json = JSON.stringify(t)));
  return json;
}

/** A chunk's znode data: its records in index order (the same text as JSON.stringify of the sorted array). */
export function encodeChunk(records: Iterable<TaskInstance>, where: string): string {
  const sorted = [...records].sort((a, b) => a.index - b.index);
  const data = `[${sorted.map(jsonOfRecord).join(",")}]`;
  const bytes = Buffer.byteLength(data);
  if (bytes > MAX_CHUNK_BYTES) throw new IntegrityError(`${where}: ${bytes} bytes of task records exceed the chunk limit of ${MAX_CHUNK_BYTES}`, { where });
  return data;
}

/** A chunk's records, validated at the border (records outside the chunk's range are an integrity error). */
export function decodeChunk(data: Buffer, k: number, width: number, where: string): TaskInstance[] {
  const records = parseChunk(data, where);
  const { first, end } = chunkRange(k, width);
  const stray = records.find((t) => t.index < first || t.index >= end);
  if (stray) throw new IntegrityError(`${where}: record ${stray.id} (index ${stray.index}) lies outside the chunk's range [${first}, ${end})`, { where });
  return records;
}

/** The chunk's records: checked by the schema's compiled check, or (refused, or no such check) parsed by the schema itself. */
function parseChunk(data: Buffer, where: string): TaskInstance[] {
  if (isTaskRecord) {
    let raw: unknown;
    try {
      raw = JSON.parse(data.toString("utf8"));
    } catch {
      raw = undefined;
    }
    if (Array.isArray(raw) && raw.every(isTaskRecord)) return raw as TaskInstance[];
  }
  return readJson(ChunkSchema, data, where);
}

function cut(text: string): string {
  return text.length > TRIMMED_TEXT ? `${text.slice(0, TRIMMED_TEXT)}…` : text;
}

/** Not cached: fitRecord changes the record it measures. */
function bytesOf(t: TaskInstance): number {
  return Buffer.byteLength(JSON.stringify(t));
}

/**
 * The record as it can be stored: one over MAX_RECORD_BYTES (long messages
 * from an agent or a failed dispatch) gets its texts cut, then loses its
 * oldest events until it fits, keeping the newest one.
 */
export function fitRecord(t: TaskInstance): TaskInstance {
  if (Buffer.byteLength(jsonOfRecord(t)) <= MAX_RECORD_BYTES) return t;
  const fitted: TaskInstance = {
    ...t,
    events: t.events.map((e) => ({ ...e, message: cut(e.message) })),
    ...(t.reason !== undefined ? { reason: cut(t.reason) } : {}),
    ...(t.exit ? { exit: { ...t.exit, reason: cut(t.exit.reason) } } : {}),
  };
  while (fitted.events.length > 1 && bytesOf(fitted) > MAX_RECORD_BYTES) fitted.events = fitted.events.slice(1);
  return fitted;
}
