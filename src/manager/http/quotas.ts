import Router from "@koa/router";
import { z } from "zod";
import type { TokenTable } from "../../common/auth.js";
import { UnavailableError, ValidationError } from "../../common/errors.js";
import { parseBody } from "../../common/protocol.js";
import { parseCpu, parseSize } from "../../common/units.js";
import { requireInNamespace, seesNamespace } from "../../auth/grants.js";
import type { QuotaStore, StoredQuota } from "../../auth/quotas.js";
import { NAMESPACE_NAME } from "../../auth/token-store.js";
import { callerOf, requireRole } from "../../http/auth.js";
import { readJson } from "../../http/body.js";
import { coresText, readyCapacity, requireProdWithinCapacity, type BandQuota, type Quota } from "../quota/admission.js";
import { usageByNamespace, usageOf, zeroUsage, type Usage } from "../quota/usage.js";
import type { ManagerView } from "./api.js";

/**
 * Namespace quotas:
 *   GET    /v1/quotas      read: {quotas: [view]} of the caller's namespaces that have a quota or hold resources
 *   GET    /v1/quotas/:ns  read in ns: {namespace, quota: {prod, batch} | null (unlimited), used: {prod, batch}, setAt?, setBy?}
 *   PUT    /v1/quotas/:ns  admin: {prod: {cpu, memory, instances?}, batch: {…}}; memory as bytes or a size ("32GiB"),
 *                          cpu as cores or millicores ("500m"); instances null or absent: any number
 *   DELETE /v1/quotas/:ns  admin: the namespace is unlimited again
 * Usage is read from this manager's copy of the state; admission itself runs on the primary (primary.ts).
 */

const MAX_INSTANCES = 1_000_000;

const CpuSchema = z.union([z.number(), z.string().max(32)]).transform((v, ctx) => {
  if (v === 0 || (typeof v === "string" && /^\s*0+(\.0+)?m?\s*$/.test(v))) return 0;
  const cores = parseCpu(v);
  if (typeof cores === "string") {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: cores });
    return z.NEVER;
  }
  return cores;
});

const MemorySchema = z.union([z.number(), z.string().max(32)]).transform((v, ctx) => {
  const bytes = parseSize(v);
  if (typeof bytes === "string") {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: bytes });
    return z.NEVER;
  }
  return bytes;
});

const BandSchema = z
  .object({ cpu: CpuSchema, memory: MemorySchema, instances: z.number().int().nonnegative().max(MAX_INSTANCES).nullable().optional() })
  .strict()
  .transform(({ instances, ...rest }): BandQuota => ({ ...rest, ...(instances != null ? { instances } : {}) }));

export const SetQuotaSchema = z.object({ prod: BandSchema, batch: BandSchema }).strict();

function bandView(b: BandQuota) {
  return { cpu: b.cpu, memory: b.memory, instances: b.instances ?? null };
}

/** Cores to the millicore: a sum of 0.1s reads 0.3, not 0.30000000000000004. */
function usedView(u: Usage): Usage {
  return { prod: { ...u.prod, cpu: Number(coresText(u.prod.cpu)) }, batch: { ...u.batch, cpu: Number(coresText(u.batch.cpu)) } };
}

function quotaView(namespace: string, q: StoredQuota | undefined, used: Usage) {
  return {
    namespace,
    quota: q ? { prod: bandView(q.prod), batch: bandView(q.batch) } : null,
    used: usedView(used),
    ...(q ? { setAt: q.setAt, setBy: q.setBy } : {}),
  };
}
export type QuotaView = ReturnType<typeof quotaView>;

/** Every namespace with a quota or holding resources, by name. */
export function quotaViews(quotas: ReadonlyMap<string, StoredQuota>, usage: ReadonlyMap<string, Usage>): QuotaView[] {
  const names = [...new Set([...quotas.keys(), ...usage.keys()])].sort();
  return names.map((ns) => quotaView(ns, quotas.get(ns), usage.get(ns) ?? zeroUsage()));
}

function requireQuotas(v: ManagerView): QuotaStore {
  const q = v.quotas();
  if (!q) throw new UnavailableError("this manager is still joining the cluster");
  return q;
}

function namespaceParam(ns: string): string {
  if (!NAMESPACE_NAME.test(ns)) throw new ValidationError([{ field: "namespace", message: `"${ns}" is not a namespace name (1-64 of A-Z a-z 0-9 . _ -)` }]);
  return ns;
}

export function quotasRouter(v: ManagerView, tokens: TokenTable): Router {
  const r = new Router();
  const read = requireRole(tokens, "read");
  const admin = requireRole(tokens, "admin");

  const usageNow = () => {
    const store = v.store();
    if (!store) throw new UnavailableError("this manager is still joining the cluster");
    return store;
  };

  r.get("/v1/quotas", read, (ctx) => {
    const caller = callerOf(ctx);
    const views = quotaViews(requireQuotas(v).all(), usageByNamespace(usageNow()));
    ctx.body = { quotas: views.filter((q) => seesNamespace(caller, q.namespace)) };
  });

  r.get("/v1/quotas/:ns", read, (ctx) => {
    const ns = namespaceParam(ctx.params.ns!);
    requireInNamespace(callerOf(ctx), "read", ns);
    ctx.body = quotaView(ns, requireQuotas(v).get(ns), usageOf(usageNow(), ns));
  });

  r.put("/v1/quotas/:ns", admin, async (ctx) => {
    const ns = namespaceParam(ctx.params.ns!);
    const quota: Quota = parseBody(SetQuotaSchema, await readJson(ctx, v.bodyLimit));
    const collector = v.collector();
    if (!collector) throw new UnavailableError("this manager is still joining the cluster");
    const stored = await requireQuotas(v).set(ns, quota, callerOf(ctx).name, (current) => requireProdWithinCapacity(ns, quota, current, readyCapacity(collector.nodes())));
    ctx.body = quotaView(ns, stored, usageOf(usageNow(), ns));
  });

  r.delete("/v1/quotas/:ns", admin, async (ctx) => {
    const ns = namespaceParam(ctx.params.ns!);
    await requireQuotas(v).remove(ns);
    ctx.body = quotaView(ns, undefined, usageOf(usageNow(), ns));
  });

  return r;
}
