import type { Context, Next } from "koa";
import type { TokenTable } from "../../../common/auth.js";
import { TorcaError } from "../../../common/errors.js";
import { SESSION_COOKIE, sessionToken } from "../../../http/auth.js";

// Browser sessions for the status pages: login, logout and the guard of every page (the cookie itself is in src/http/auth.ts).

/** True when `token` is valid for reading the whole cell: the pages mix every namespace, so a namespaced token uses the API instead. */
export function tokenAllowsRead(tokens: TokenTable, token: string | undefined): boolean {
  if (!token) return false;
  try {
    return tokens.authorize(`Bearer ${token}`, "read").namespaces === "*";
  } catch (e) {
    if (e instanceof TorcaError) return false;
    throw e;
  }
}

export function setSession(ctx: Context, token: string): void {
  ctx.cookies.set(SESSION_COOKIE, encodeURIComponent(token), { httpOnly: true, sameSite: "strict", path: "/", overwrite: true, secure: ctx.secure });
}

export function clearSession(ctx: Context): void {
  ctx.cookies.set(SESSION_COOKIE, "", { httpOnly: true, sameSite: "strict", path: "/", overwrite: true, maxAge: 0 });
}

/** A local path to return to after login; anything else (other hosts, `//x`) becomes "/". */
export function safeNext(next: unknown): string {
  return typeof next === "string" && next.startsWith("/") && !next.startsWith("//") && !next.includes("\\") ? next : "/";
}

/** The current URL without its `token` query parameter (so the token does not stay in history). */
export function urlWithoutToken(ctx: Context): string {
  const q = new URLSearchParams(ctx.querystring);
  q.delete("token");
  const s = q.toString();
  return ctx.path + (s ? `?${s}` : "");
}

export interface PageAuthOptions {
  tokens: TokenTable;
  /** Renders the login form (status 401) for this request. */
  loginForm(ctx: Context, error?: string): void;
}

/**
 * Guards a page: a valid `?token=` sets the cookie and redirects to the same
 * URL without it; otherwise the cookie must hold a valid token, or the login
 * form is shown.
 */
export function pageAuth(o: PageAuthOptions) {
  return async (ctx: Context, next: Next) => {
    const fromQuery = ctx.query.token;
    if (typeof fromQuery === "string") {
      if (!tokenAllowsRead(o.tokens, fromQuery)) return o.loginForm(ctx, "That token is not valid for this cell.");
      setSession(ctx, fromQuery);
      ctx.status = 303;
      ctx.redirect(urlWithoutToken(ctx));
      return;
    }
    if (!tokenAllowsRead(o.tokens, sessionToken(ctx))) return o.loginForm(ctx);
    await next();
  };
}
