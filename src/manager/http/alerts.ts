import Router from "@koa/router";
import type { TokenTable } from "../../common/auth.js";
import { UnavailableError, ValidationError } from "../../common/errors.js";
import type { DeliveryRecord } from "../../alerting/types.js";
import { namespaceOfAlertKey, seesNamespace } from "../../auth/grants.js";
import { callerOf, requireRole } from "../../http/auth.js";

/**
 * `GET /v1/alerts?limit=N` → `{alerts: DeliveryRecord[]}`, newest first: one
 * record per (incident, recipient) with its status and attempts. Served by
 * every manager from the ledger in ZooKeeper.
 */

export const DEFAULT_ALERT_LIMIT = 100;
export const MAX_ALERT_LIMIT = 1000;

export interface AlertsDeps {
  /** undefined while this manager has no ZooKeeper session. */
  history(limit: number): Promise<DeliveryRecord[]> | undefined;
}

export function parseLimit(v: unknown): number {
  if (v === undefined) return DEFAULT_ALERT_LIMIT;
  const n = typeof v === "string" && /^\d{1,6}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= MAX_ALERT_LIMIT)) throw new ValidationError([{ field: "limit", message: `must be an integer from 1 to ${MAX_ALERT_LIMIT}` }]);
  return n;
}

export function alertsRouter(deps: AlertsDeps, tokens: TokenTable): Router {
  const r = new Router();
  r.get("/v1/alerts", requireRole(tokens, "read"), async (ctx) => {
    const limit = parseLimit(ctx.query.limit);
    const pending = deps.history(limit);
    if (!pending) throw new UnavailableError("this manager is still joining the cluster");
    // A namespaced token sees the alerts about tasks of its namespaces (so it may get fewer than `limit`).
    const caller = callerOf(ctx);
    const alerts = await pending;
    ctx.body = { alerts: caller.namespaces === "*" ? alerts : alerts.filter((a) => { const ns = namespaceOfAlertKey(a.key); return ns !== undefined && seesNamespace(caller, ns); }) };
  });
  return r;
}
