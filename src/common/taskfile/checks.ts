/**
 * The checking vocabulary the rules are written in: a Checker collects issues
 * and reads typed values (strings, integers in a range, one of a list, sizes,
 * durations), and a Section is one mapping whose unknown keys and empty values
 * have already been reported. Each reader returns undefined after reporting,
 * so a rule reads `c.int(v, path, 1, 10) ?? fallback`.
 */
import { parseDuration, parseSize } from "../units.js";
import { describe, isPlainObject, quoteList } from "./describe.js";
import type { Anchor, Path, RawIssue } from "./issues.js";
import { LIMITS } from "./schema.js";
import { suggest } from "./suggest.js";

/** Source text of a plain YAML scalar, so `VERSION: 1.10` reaches the task as "1.10", not "1.1". */
export type SourceText = (path: Path) => string | undefined;

export class Checker {
  readonly issues: RawIssue[] = [];
  /** Issues found past LIMITS.maxIssues: counted, not kept. */
  omitted = 0;
  constructor(readonly sourceText: SourceText) {}

  add(path: Path, message: string, anchor: Anchor = "value"): undefined {
    if (this.full) this.omitted++;
    else this.issues.push({ path, message, anchor });
    return undefined;
  }

  /** Once full, work that only improves a message (did-you-mean hints) is skipped. */
  get full(): boolean {
    return this.issues.length >= LIMITS.maxIssues;
  }

  /** A mapping with only `keys`; unknown keys and null values are reported here once. */
  section(v: unknown, path: Path, keys: readonly string[]): Section | undefined {
    if (!isPlainObject(v)) return this.add(path, `must be a mapping of keys (${quoteList(keys.slice(0, 3))}, ...), got ${describe(v)}`);
    const values: Record<string, unknown> = {};
    const nulls = new Set<string>();
    for (const key of Object.keys(v)) {
      if (!keys.includes(key)) {
        const hint = this.full ? undefined : suggest(key, keys);
        this.add([...path, key], `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ` (allowed: ${keys.join(", ")})`}`, "key");
        continue;
      }
      const val = v[key];
      // A key with nothing after it is almost always an unfinished edit; silently defaulting would hide it.
      if (val === null || val === undefined) {
        nulls.add(key);
        this.add([...path, key], "has no value (give one, or remove the key to use the default)");
        continue;
      }
      values[key] = val;
    }
    return new Section(this, path, values, nulls);
  }

  string(v: unknown, path: Path): string | undefined {
    if (typeof v === "string") return v;
    return this.add(path, `must be a string, got ${describe(v)}`);
  }

  /** Strings, plus numbers and booleans written as in the source (argv, env and attribute values). */
  scalarString(v: unknown, path: Path): string | undefined {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return this.sourceText(path) ?? String(v);
    return this.add(path, `must be a string, got ${describe(v)}`);
  }

  int(v: unknown, path: Path, min: number, max: number): number | undefined {
    if (typeof v !== "number") return this.add(path, `must be an integer from ${min} to ${max}, got ${describe(v)}`);
    if (!Number.isInteger(v)) return this.add(path, `must be a whole number, got ${v}`);
    if (v < min || v > max) return this.add(path, `must be from ${min} to ${max}, got ${v}`);
    return v;
  }

  oneOf<T extends string>(v: unknown, path: Path, allowed: readonly T[]): T | undefined {
    if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
    const hint = typeof v === "string" && !this.full ? suggest(v, allowed) : undefined;
    return this.add(path, `${describe(v)} is not one of ${quoteList(allowed)}${hint ? ` (did you mean "${hint}"?)` : ""}`);
  }

  list(v: unknown, path: Path, example: string): unknown[] | undefined {
    if (Array.isArray(v)) return v;
    return this.add(path, `must be a list, e.g. ${example}; got ${describe(v)}`);
  }

  size(v: unknown, path: Path): number | undefined {
    const r = parseSize(v);
    return typeof r === "string" ? this.add(path, r) : r;
  }

  duration(v: unknown, path: Path): number | undefined {
    const r = parseDuration(v);
    if (typeof r === "string") return this.add(path, r);
    if (r > LIMITS.maxDurationMs) return this.add(path, `must be at most 24d, got ${describe(v)}`);
    return r;
  }
}

export class Section {
  constructor(
    private readonly c: Checker,
    readonly path: Path,
    private readonly values: Record<string, unknown>,
    private readonly nulls: Set<string>,
  ) {}

  at(key: string): Path {
    return [...this.path, key];
  }

  get(key: string): unknown {
    return Object.prototype.hasOwnProperty.call(this.values, key) ? this.values[key] : undefined;
  }

  /** True if the key was written at all (even if its value was rejected as null). */
  written(key: string): boolean {
    return this.get(key) !== undefined || this.nulls.has(key);
  }

  required(key: string): unknown {
    const v = this.get(key);
    if (v === undefined && !this.nulls.has(key)) this.c.add(this.at(key), `is required`, "parent");
    return v;
  }
}
