import { z } from "zod";
import { IntegrityError } from "../../common/errors.js";
import { readJson } from "../../common/json.js";
import { TaskInstanceSchema } from "../../common/schemas/state.js";
import type { TaskInstance } from "../../common/types.js";

/**
 * Task records of one job are stored in chunk znodes, `<job>/tasks/c<k>`
 * holding the records of indexes [k·N, (k+1)·N) as one JSON array sorted by
 * index, so one compare-and-set commits many task changes.
 *
 * Sizes: a fresh record is about 350 bytes, a dispatched one with ports and
 * usage about 700, and one with the full 30 events about 3 KiB. With N = 64 a
 * chunk of such records is under 200 KiB; a record is trimmed to at most
 * MAX_RECORD_BYTES (fitRecord), so no chunk can pass 64 × 8 KiB = 512 KiB,
 * half of ZooKeeper's packet limit (jute.maxbuffer, 1 MiB), which a larger
 * write would make the server close the session over.
 */
export const TASKS_PER_CHUNK = 64;
export const MAX_RECORD_BYTES = 8 * 1024;
/** Past this a chunk is refused before it is sent (only records that cannot be trimmed could reach it). */
export const MAX_CHUNK_BYTES = 768 * 1024;
/** Event messages and reasons of an oversized record are cut to this many characters. */
const TRIMMED_TEXT = 240;

const ChunkSchema = z.array(TaskInstanceSchema);

export function chunkOf(index: number): number {
  return Math.floor(index / TASKS_PER_CHUNK);
}

/** The indexes chunk `k` holds. */
export function chunkRange(k: number): { first: number; end: number } {
  return { first: k * TASKS_PER_CHUNK, end: (k + 1) * TASKS_PER_CHUNK };
}

/** A child of a job's tasks node: a chunk (`c<k>`), a record of the per-index layout before chunks (`<index>`), or something else. */
export type TasksChild = { kind: "chunk"; k: number } | { kind: "legacy"; index: number } | { kind: "other" };

export function parseTasksChild(name: string): TasksChild {
  if (/^c\d+$/.test(name)) return { kind: "chunk", k: Number(name.slice(1)) };
  if (/^\d+$/.test(name)) return { kind: "legacy", index: Number(name) };
  return { kind: "other" };
}

/** Records whose JSON one generation of the encoding cache keeps (two are kept). */
const ENCODED_GENERATION = 20_000;

/**
 * Each record's JSON, kept while it is recent. A chunk write sends all the
 * chunk's records while usually only a few of them changed since its last
 * write, and a stored record is never changed, only replaced (under the test
 * runner the store freezes it to hold code to that), so a record's text stays
 * its text. Two generations of at
 * most ENCODED_GENERATION records each bound the memory, and the records of
 * chunks written again and again stay in the newer one; weak keys let a
 * replaced record go with its text.
 */
class EncodedRecords {
  private current = new WeakMap<TaskInstance, string>();
  private previous = new WeakMap<TaskInstance, string>();
  private inCurrent = 0;

  textOf(t: TaskInstance): string {
    const hit = this.current.get(t);
    if (hit !== undefined) return hit;
    const text = this.previous.get(t) ?? JSON.stringify(t);
    if (++this.inCurrent > ENCODED_GENERATION) {
      this.previous = this.current;
      this.current = new WeakMap();
      this.inCurrent = 1;
    }
    this.current.set(t, text);
    return text;
  }
}

const encoded = new EncodedRecords();

/** A chunk's znode data: its records in index order, as one JSON array. */
export function encodeChunk(records: Iterable<TaskInstance>, where: string): string {
  const sorted = [...records].sort((a, b) => a.index - b.index);
  const data = `[${sorted.map((t) => encoded.textOf(t)).join(",")}]`;
  const bytes = Buffer.byteLength(data);
  if (bytes > MAX_CHUNK_BYTES) throw new IntegrityError(`${where}: ${bytes} bytes of task records exceed the chunk limit of ${MAX_CHUNK_BYTES}`, { where });
  return data;
}

/** A chunk's records, validated at the border (records outside the chunk's range are an integrity error). */
export function decodeChunk(data: Buffer, k: number, where: string): TaskInstance[] {
  const records = parseChunk(data, where);
  const { first, end } = chunkRange(k);
  const stray = records.find((t) => t.index < first || t.index >= end);
  if (stray) throw new IntegrityError(`${where}: record ${stray.id} (index ${stray.index}) lies outside the chunk's range [${first}, ${end})`, { where });
  return records;
}

/** The chunk's records, read with the chunk schema (its compiled check first, see readJson). */
function parseChunk(data: Buffer, where: string): TaskInstance[] {
  return readJson(ChunkSchema, data, where);
}

function cut(text: string): string {
  return text.length > TRIMMED_TEXT ? `${text.slice(0, TRIMMED_TEXT)}…` : text;
}

/** Through the encoding cache: the chunk write that follows finds the record's text there. */
function bytesOf(t: TaskInstance): number {
  return Buffer.byteLength(encoded.textOf(t));
}

/**
 * The record as it can be stored: one over MAX_RECORD_BYTES (long messages
 * from an agent or a failed dispatch) gets its texts cut, then loses its
 * oldest events until it fits, keeping the newest one.
 */
export function fitRecord(t: TaskInstance): TaskInstance {
  if (bytesOf(t) <= MAX_RECORD_BYTES) return t;
  let fitted: TaskInstance = {
    ...t,
    events: t.events.map((e) => ({ ...e, message: cut(e.message) })),
    ...(t.reason !== undefined ? { reason: cut(t.reason) } : {}),
    ...(t.exit ? { exit: { ...t.exit, reason: cut(t.exit.reason) } } : {}),
  };
  // A new record each step, never changed after it was measured: the cache keeps each one's text.
  while (fitted.events.length > 1 && bytesOf(fitted) > MAX_RECORD_BYTES) fitted = { ...fitted, events: fitted.events.slice(1) };
  return fitted;
}
