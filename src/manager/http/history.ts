import Router from "@koa/router";
import type { TokenTable } from "../../common/auth.js";
import { NotFoundError, NotPrimaryError, UnavailableError, ValidationError } from "../../common/errors.js";
import { parseDuration } from "../../common/units.js";
import type { HistoryStore } from "../../history/store.js";
import { USAGE_KEYS, type JobView } from "../../history/queries.js";
import { FINISHED_STATUSES } from "../../history/record.js";
import { requireClusterWide, requireInNamespace, type Caller } from "../../auth/grants.js";
import { callerOf, requireRole } from "../../http/auth.js";
import { queryFlag, queryValue } from "../../http/query.js";
import { jobSummary, type ManagerView } from "./api.js";
import { versionsView } from "./deployments.js";

/**
 * History and usage: `GET /v1/history`, `GET /v1/history/:job`, `GET /v1/usage`.
 *
 * Only the primary opens the history store (the embedded engine is one
 * process's, and costs ~250 MiB), so a backup answers these with a redirect
 * to the primary, which the CLI and the pages follow like a write's.
 */

const SINCE = { pattern: /^\d+(ms|s|m|h|d)$/, what: "a duration such as 24h or 7d" };
const NAMESPACE = { pattern: /^[a-z0-9][a-z0-9-]{0,62}$/, what: "a namespace" };
const LIMIT = { pattern: /^\d{1,4}$/, what: "a number from 1 to 1000" };
const CURSOR = { pattern: /^[A-Za-z0-9_=:.-]{1,200}$/, what: "a cursor from a previous page" };

export async function requireHistory(v: ManagerView): Promise<HistoryStore> {
  const h = v.history();
  if (!h) {
    const l = v.leader();
    throw new NotPrimaryError(l && l.id !== v.id ? l.url : undefined);
  }
  const store = await h.ready();
  if (!store) throw new UnavailableError("the history store cannot be opened right now; see the primary's log");
  return store;
}

/** `?since=24h` as a time (ms) `now` minus that long. */
export function sinceOf(text: string | undefined, now: number): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (typeof ms !== "number") throw new ValidationError([{ field: "since", message: ms }]);
  return now - ms;
}

/** `NAME` or `NS:NAME`, as job ids are written. */
export function jobRef(id: string): { namespace: string; name: string } {
  const colon = id.indexOf(":");
  return colon < 0 ? { namespace: "default", name: id } : { namespace: id.slice(0, colon), name: id.slice(colon + 1) };
}

/**
 * The namespace a history or usage query is limited to: the one asked for
 * (which the caller must read), else the caller's only namespace; a query
 * across every namespace needs a cluster-wide token.
 */
function queryNamespace(caller: Caller, asked: string | undefined, what: string): string | undefined {
  if (asked !== undefined) {
    requireInNamespace(caller, "read", asked);
    return asked;
  }
  if (caller.namespaces !== "*" && caller.namespaces.length === 1) return caller.namespaces[0];
  requireClusterWide(caller, `${what} of every namespace (add ?namespace=NS)`);
  return undefined;
}

export function historyRouter(v: ManagerView, tokens: TokenTable): Router {
  const r = new Router();
  const read = requireRole(tokens, "read");

  r.get("/v1/history", read, async (ctx) => {
    const namespace = queryNamespace(callerOf(ctx), queryValue(ctx, "namespace", NAMESPACE), "history");
    const limit = queryValue(ctx, "limit", LIMIT);
    const cursor = queryValue(ctx, "cursor", CURSOR);
    const state = queryValue(ctx, "state", FINISHED_STATUSES) as (typeof FINISHED_STATUSES)[number] | undefined;
    const since = sinceOf(queryValue(ctx, "since", SINCE), Date.now());
    const store = await requireHistory(v);
    ctx.body = await store.listFinished({
      ...(namespace ? { namespace } : {}),
      ...(state ? { state } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(limit ? { limit: Math.min(1000, Math.max(1, Number(limit))) } : {}),
      ...(cursor ? { cursor } : {}),
    });
  });

  r.get("/v1/history/:job", read, async (ctx) => {
    const id = ctx.params.job!;
    const { namespace, name } = jobRef(id);
    requireInNamespace(callerOf(ctx), "read", namespace);
    const store = await requireHistory(v);
    const archived: JobView = await store.jobView(name, namespace);
    const state = v.store();
    const job = state?.jobs.get(id);
    const live = job && state ? { ...jobSummary(job, state.taskTally(id).byState), generation: job.submittedAt, cron: job.cron, taskList: state.tasksOf(id) } : null;
    if (!live && archived.runs.length === 0 && archived.versions.length === 0) throw new NotFoundError("job", id);
    // The live job's versions (newest first) come from the primary's version store, ahead of those of archived runs.
    const kept = job ? ((await v.primary()?.versions(id)) ?? []) : [];
    const liveVersions = job && !archived.versions.some((x) => x.generation === job.submittedAt)
      ? (kept.length ? versionsView(kept, job.version ?? 0, queryFlag(ctx, "diff")) : [{ version: job.version ?? 0, submittedAt: job.submittedAt, source: job.source, running: true }]).map((x) => ({ ...x, generation: job.submittedAt, live: true }))
      : [];
    ctx.body = { ...archived, versions: [...liveVersions, ...archived.versions], live };
  });

  r.get("/v1/usage", read, async (ctx) => {
    const by = (queryValue(ctx, "by", USAGE_KEYS) ?? "namespace") as (typeof USAGE_KEYS)[number];
    const namespace = queryNamespace(callerOf(ctx), queryValue(ctx, "namespace", NAMESPACE), "usage");
    const since = sinceOf(queryValue(ctx, "since", SINCE), Date.now());
    const store = await requireHistory(v);
    ctx.body = await store.usage({ by, ...(since !== undefined ? { since } : {}), ...(namespace ? { namespace } : {}) });
  });

  return r;
}
