import type { Context, Next } from "koa";
import { MethodNotAllowedError, NotFoundError, NotPrimaryError, toTorcaError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

/**
 * The HTTP edge of every Torca server (manager, agent, naming): the only place
 * where TorcaErrors become status codes and the envelope
 * `{error: {code, message, field?, line?, column?}}`. A 5xx is logged here with
 * its stack; the client gets the envelope only, never a stack.
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
      // The thrown value itself, so a non-Torca failure keeps its own stack in the log.
      if (err.status >= 500) log.error({ err: e, code: err.code, method: ctx.method, path: ctx.path }, "request failed");
      ctx.status = err.status;
      ctx.body = { error: err.toJSON() };
    }
  };
}
