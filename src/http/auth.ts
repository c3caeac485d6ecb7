import type { Context, Next } from "koa";
import { requireGrant, type Caller, type Grant } from "../auth/grants.js";
import type { TokenTable } from "../common/auth.js";

/**
 * The status pages' session cookie. It carries the bearer token itself
 * (HttpOnly, so page scripts never see it; SameSite=Strict, so other sites
 * cannot ride on it). Tokens are shared by all managers of a cell and cookies
 * ignore ports, so one login also covers the backup's pages.
 */
export const SESSION_COOKIE = "torca_session";

/** The bearer token held in the session cookie, if any. */
export function sessionToken(ctx: Context): string | undefined {
  const raw = ctx.cookies.get(SESSION_COOKIE);
  if (!raw) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** Requires a bearer token holding `grant` (see src/auth/grants.ts); the caller is then `callerOf(ctx)`. */
export function requireRole(tokens: TokenTable, grant: Grant) {
  return async (ctx: Context, next: Next) => {
    const caller = await tokens.identifyFresh(ctx.get("authorization") || tokenFromQuery(ctx) || tokenFromPageSession(ctx));
    // Set before the check, so the audit log names the token of a refused call.
    ctx.state.caller = caller;
    requireGrant(caller, grant);
    await next();
  };
}

/** The caller `requireRole` authenticated for this request. */
export function callerOf(ctx: Context): Caller {
  return ctx.state.caller as Caller;
}

/** EventSource cannot set headers; the pages pass the token as ?token= on the event stream only. */
function tokenFromQuery(ctx: Context): string | undefined {
  const t = ctx.query.token;
  return typeof t === "string" && ctx.path === "/v1/events" ? `Bearer ${t}` : undefined;
}

/** The session cookie counts for GET requests only, so a cookie can never authorize a write. */
function tokenFromPageSession(ctx: Context): string | undefined {
  const t = ctx.method === "GET" ? sessionToken(ctx) : undefined;
  return t ? `Bearer ${t}` : undefined;
}
