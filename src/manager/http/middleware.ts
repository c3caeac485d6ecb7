import type { Context, Next } from "koa";
import getRawBody from "raw-body";
import type { Role, TokenTable } from "../../common/auth.js";
import { MethodNotAllowedError, NotFoundError, NotPrimaryError, PayloadTooLargeError, toTorcaError, ValidationError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { decodeUtf8 } from "../../common/utf8.js";
import { sessionToken } from "./pages/session.js";

/**
 * The HTTP edge: the only place where TorcaErrors become status codes and the
 * `{error: {code, message, field}}` envelope.
 */
export function errorEnvelope(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      // Nothing answered: no route (Koa's bare 404), or the routers' allowedMethods (405, and 501 for a method no route has).
      if (ctx.body == null && ctx.status === 404) throw new NotFoundError("endpoint", `${ctx.method} ${ctx.path}`);
      if (ctx.body == null && (ctx.status === 405 || ctx.status === 501)) throw new MethodNotAllowedError(ctx.method, ctx.path, ctx.response.get("Allow") || undefined);
    } catch (e) {
      const err = toTorcaError(e);
      if (err instanceof NotPrimaryError && err.primaryUrl) {
        ctx.status = 307;
        ctx.set("Location", err.primaryUrl.replace(/\/$/, "") + ctx.originalUrl);
        ctx.body = { error: err.toJSON() };
        return;
      }
      if (err.status >= 500) log.error({ err: err.message, code: err.code, path: ctx.path }, "request failed");
      ctx.status = err.status;
      ctx.body = { error: err.toJSON() };
    }
  };
}

/** Requires a bearer token with at least `role`. */
export function requireRole(tokens: TokenTable, role: Role) {
  return async (ctx: Context, next: Next) => {
    ctx.state.caller = tokens.authorize(ctx.get("authorization") || tokenFromQuery(ctx) || tokenFromPageSession(ctx), role);
    await next();
  };
}

/** EventSource cannot set headers; the pages pass the token as ?token= on the event stream only. */
function tokenFromQuery(ctx: Context): string | undefined {
  const t = ctx.query.token;
  return typeof t === "string" && ctx.path === "/v1/events" ? `Bearer ${t}` : undefined;
}

/** The status pages' session cookie counts for GET requests only, so a cookie can never authorize a write. */
function tokenFromPageSession(ctx: Context): string | undefined {
  const t = ctx.method === "GET" ? sessionToken(ctx) : undefined;
  return t ? `Bearer ${t}` : undefined;
}

/** Reads the request body as UTF-8 text (strictly: a bad byte is a 400 naming its line), enforcing a size limit. */
export async function readText(ctx: Context, limit: number): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await getRawBody(ctx.req, { limit, length: ctx.get("content-length") || undefined });
  } catch (e) {
    const err = e as { type?: string; status?: number };
    if (err.type === "entity.too.large" || err.status === 413) throw new PayloadTooLargeError(limit);
    throw new ValidationError([{ field: "", message: `cannot read request body: ${(e as Error).message}` }]);
  }
  return decodeUtf8(bytes, "the request body");
}

/**
 * A query parameter that may be absent, given once, with one of `allowed`
 * values (or matching a pattern). Anything else is a 400 naming it, rather
 * than a silent default that answers a different question than was asked.
 */
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

export async function readJson(ctx: Context, limit: number): Promise<unknown> {
  const text = await readText(ctx, limit);
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ValidationError([{ field: "", message: `request body is not valid JSON: ${(e as Error).message}` }]);
  }
}
