import { readFileSync } from "node:fs";
import type { z } from "zod";
import { IntegrityError } from "./errors.js";
import { safeParseFast } from "./fast-check.js";

/**
 * The one way to read JSON that Torca stored itself (znode payloads, local
 * state files): parsed and checked against its schema, so a corrupt or
 * foreign payload is an `IntegrityError` naming where it came from and the
 * first field that is wrong, never a value of the wrong shape passed on as if
 * it were trusted.
 */
export function readJson<T extends z.ZodTypeAny>(schema: T, data: Buffer | string, where: string): z.output<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof data === "string" ? data : data.toString("utf8"));
  } catch (e) {
    throw new IntegrityError(`${where}: not valid JSON (${(e as Error).message})`, { where });
  }
  const r = safeParseFast(schema, raw);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const field = first?.path.join(".") ?? "";
  throw new IntegrityError(`${where}: ${field ? `${field}: ` : ""}${first?.message ?? "does not match its schema"}`, { where, field: field || undefined });
}

/**
 * readJson for a reader that skips a corrupt payload rather than failing:
 * undefined for one that does not match, after telling `onCorrupt` (to warn).
 */
export function readJsonIfValid<T extends z.ZodTypeAny>(schema: T, data: Buffer | string, where: string, onCorrupt?: (e: IntegrityError) => void): z.output<T> | undefined {
  try {
    return readJson(schema, data, where);
  } catch (e) {
    if (!(e instanceof IntegrityError)) throw e;
    onCorrupt?.(e);
    return undefined;
  }
}

/**
 * A local state file read with readJsonIfValid: undefined when the file is
 * missing or unreadable, or (told to `onCorrupt`) when its content is corrupt.
 */
export function readJsonFileIfValid<T extends z.ZodTypeAny>(schema: T, path: string, onCorrupt?: (e: IntegrityError) => void): z.output<T> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  return readJsonIfValid(schema, text, path, onCorrupt);
}

/**
 * Whether two JSON-like values serialize to the same JSON document up to key
 * order (keys holding undefined count as absent, as in JSON.stringify),
 * without making either document: a backup compares every record of each
 * chunk it re-reads with its copy's.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let keys = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    keys++;
    if (!Object.hasOwn(y, k) || !sameJson(x[k], y[k])) return false;
  }
  for (const k in y) if (y[k] !== undefined) keys--;
  return keys === 0;
}
