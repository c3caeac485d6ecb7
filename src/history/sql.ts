/**
 * The one SQL layer of the history store. Both engines speak PostgreSQL's SQL
 * (PGlite is PostgreSQL compiled to WebAssembly), so every statement in
 * src/history/ is written once and runs on either.
 *
 * Engines differ in how they return 64-bit integers (string vs number), so
 * statements cast what they select to int, float8 or text; timestamps come
 * back as Date on both and go in as ISO strings (`isoOf`), exact to the ms.
 */

export type SqlRow = Record<string, unknown>;

export interface SqlQueryable {
  /** One statement; `$1…$n` are `params`. */
  query<R extends SqlRow = SqlRow>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface SqlDatabase extends SqlQueryable {
  readonly engine: "postgres" | "embedded";
  /** Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A time in ms since the epoch as a timestamptz parameter. */
export function isoOf(ms: number): string;
export function isoOf(ms: number | undefined): string | null;
export function isoOf(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** A selected timestamptz back in ms since the epoch. */
export function msOf(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === "string") return Date.parse(v);
  throw new TypeError(`not a timestamp: ${String(v)}`);
}
