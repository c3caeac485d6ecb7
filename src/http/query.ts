import type { Context } from "koa";
import { ValidationError } from "../common/errors.js";
import { ALLOC_MEMBER_NAME_RE } from "../common/types.js";

/**
 * A query parameter that may be absent, given once, with one of `allowed`
 * values (or matching a pattern). Anything else is a 400 naming it, rather
 * than a silent default that answers a different question than was asked.
 */
/** `member`: an alloc member's name (docs/allocs.md). */
export const MEMBER_QUERY = { pattern: ALLOC_MEMBER_NAME_RE, what: "an alloc task name" };

export function queryValue(ctx: Context, name: string, allowed: readonly string[] | { pattern: RegExp; what: string }): string | undefined {
  const v = ctx.query[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw new ValidationError([{ field: name, message: `is given ${v.length} times; give it once` }]);
  if ("pattern" in allowed ? allowed.pattern.test(v) : allowed.includes(v)) return v;
  const expected = "pattern" in allowed ? allowed.what : `one of ${allowed.join(", ")}`;
  throw new ValidationError([{ field: name, message: `must be ${expected}, got ${JSON.stringify(v.length > 80 ? v.slice(0, 77) + "..." : v)}` }]);
}

/** `?tail=N`: the last N lines of a log. */
export const TAIL_LINES = { pattern: /^\d{1,9}$/, what: "a number of lines" };

/** Yes/no query flags (`?follow=1`). */
export const FLAG_VALUES = ["1", "true", "0", "false"] as const;

export function queryFlag(ctx: Context, name: string): boolean {
  const v = queryValue(ctx, name, FLAG_VALUES);
  return v === "1" || v === "true";
}
