import type { Context, Next } from "koa";
import getRawBody from "raw-body";
import type { Role, TokenTable } from "../../common/auth.js";
import { NotPrimaryError, PayloadTooLargeError, toTorcaError, ValidationError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { sessionToken } from "./pages/session.js";

/**
 * The HTTP edge: the only place where TorcaErrors become status codes and the
 * `{error: {code, message, field}}` envelope.
 */
export function errorEnvelope(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
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

/** Reads the request body as text, enforcing a size limit. */
export async function readText(ctx: Context, limit: number): Promise<string> {
  try {
    return await getRawBody(ctx.req, { limit, encoding: "utf8", length: ctx.get("content-length") || undefined });
  } catch (e) {
    const err = e as { type?: string; status?: number };
    if (err.type === "entity.too.large" || err.status === 413) throw new PayloadTooLargeError(limit);
    throw new ValidationError([{ field: "", message: `cannot read request body: ${(e as Error).message}` }]);
  }
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
