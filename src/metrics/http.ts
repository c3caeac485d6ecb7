import type { Context, Next } from "koa";
import type { Histogram } from "prom-client";

/** What a request that no route answered is counted under: raw paths would make one series per URL. */
export const UNMATCHED_ROUTE = "unmatched";

/**
 * Koa middleware timing every request by the route pattern that answered it
 * (`/v1/jobs/:id`, set by @koa/router) and its final status. Mount it
 * outermost, so the status is the one the error edge gave.
 */
export function httpMetrics(histogram: Histogram<"method" | "route" | "code">) {
  return async (ctx: Context, next: Next) => {
    const end = histogram.startTimer();
    try {
      await next();
    } finally {
      const route = (ctx as Context & { _matchedRoute?: string | RegExp })._matchedRoute;
      end({ method: ctx.method, route: typeof route === "string" ? route : UNMATCHED_ROUTE, code: String(ctx.status) });
    }
  };
}

export function httpRequestHistogramOptions() {
  return { name: "torca_http_request_duration_seconds", help: "HTTP requests served, by method, route pattern and status code", labelNames: ["method", "route", "code"] as const };
}
