import Router from "@koa/router";
import type { Context } from "koa";
import type { TokenTable } from "../../common/auth.js";
import { ValidationError } from "../../common/errors.js";
import { InvalidNameError } from "../../../naming/names.js";
import type { Endpoint, Resolution, Resolver } from "../../../naming/resolver.js";
import { requireRole } from "../../http/auth.js";
import { queryValue } from "../../http/query.js";

/**
 * Naming lookups over HTTP, served from the manager's own watched resolver
 * cache (any manager, primary or backup, answers; no ZooKeeper read per request).
 *
 *   GET /v1/names                     every service: {services: [{name, namespace, service, endpoints, nodes, stale}], stale, zookeeper}
 *   GET /v1/names/:name               {name, endpoints, stale, version}; :name is `web.frontend` or `ns%2Fweb.frontend`
 *   GET /v1/names/:ns/:service        the same, with the namespace as its own path segment
 *
 * Long poll: `?index=N&wait=30` answers once the name's version is above N, or
 * after `wait` seconds (at most 60) with the current answer.
 */

const MAX_WAIT_MS = 60_000;

function lookupError(e: unknown): unknown {
  return e instanceof InvalidNameError ? new ValidationError([{ field: "name", message: e.message }]) : e;
}

function waitParams(ctx: Context): { index: number; waitMs: number } | undefined {
  const index = queryValue(ctx, "index", { pattern: /^\d{1,15}$/, what: "a non-negative integer (a version from an earlier answer)" });
  const wait = queryValue(ctx, "wait", { pattern: /^\d{1,9}(\.\d+)?$/, what: "a number of seconds" });
  if (index === undefined) return undefined;
  return { index: Number(index), waitMs: Math.min(Number(wait ?? 30) * 1000, MAX_WAIT_MS) };
}

/** Waits until the name changes past `index`, the client goes away, or the time is up. */
async function longPoll(ctx: Context, resolver: Resolver, first: Resolution, index: number, waitMs: number): Promise<Resolution> {
  if (first.version > index || waitMs === 0) return first;
  await new Promise<void>((resolve) => {
    const onChange = (name: string) => {
      if (name === first.name) done();
    };
    const timer = setTimeout(() => done(), waitMs);
    const done = () => {
      clearTimeout(timer);
      resolver.off("change", onChange);
      ctx.req.off("close", done);
      resolve();
    };
    resolver.on("change", onChange);
    ctx.req.once("close", done);
  });
  return resolver.resolveDetailed(first.name);
}

function view(r: Resolution): { name: string; endpoints: Endpoint[]; stale: boolean; version: number } {
  return { name: r.name, endpoints: r.endpoints, stale: r.stale, version: r.version };
}

export function namesRouter(resolver: Resolver, tokens: TokenTable): Router {
  const r = new Router();
  const read = requireRole(tokens, "read");

  const lookup = async (ctx: Context, name: string) => {
    const wait = waitParams(ctx);
    let res: Resolution;
    try {
      res = await resolver.resolveDetailed(name);
    } catch (e) {
      throw lookupError(e);
    }
    if (wait) {
      ctx.req.socket.setTimeout(0);
      res = await longPoll(ctx, resolver, res, wait.index, wait.waitMs);
    }
    ctx.set("Cache-Control", "no-store");
    ctx.body = view(res);
  };

  r.get("/v1/names", read, async (ctx) => {
    const services = await resolver.services();
    ctx.set("Cache-Control", "no-store");
    ctx.body = { services, stale: resolver.state !== "connected", zookeeper: resolver.state };
  });
  r.get("/v1/names/:name", read, (ctx) => lookup(ctx, ctx.params.name!));
  r.get("/v1/names/:ns/:service", read, (ctx) => lookup(ctx, `${ctx.params.ns!}/${ctx.params.service!}`));
  return r;
}
