import Router from "@koa/router";
import { z } from "zod";
import type { TokenTable } from "../common/auth.js";
import { UnavailableError, ValidationError } from "../common/errors.js";
import { parseBody } from "../common/protocol.js";
import { parseDuration } from "../common/units.js";
import { callerOf, requireRole } from "../http/auth.js";
import { readJson } from "../http/body.js";
import type { AuditLog } from "./audit.js";
import { NAMESPACE_NAME, TOKEN_NAME, type TokenStore } from "./token-store.js";

/**
 * Admin routes for tokens and the audit log:
 *   POST   /v1/tokens        {name, role, namespaces, ttl?} → 201 {name, token, namespaces, role, expiresAt}; the secret is shown only here
 *   GET    /v1/tokens        {tokens: [{name, role, namespaces, createdAt, createdBy, expiresAt?}]}
 *   DELETE /v1/tokens/:name  revokes: every manager refuses it within a second
 *   GET    /v1/audit?limit=N {entries: [{at, who, role, method, path, status, from, manager}]}, newest first
 */

/** A token lives at most this long (and `ttl` must fit a timer-free absolute time anyway). */
const MAX_TTL_MS = 10 * 365 * 86_400_000;
const MAX_AUDIT_LIMIT = 1000;

export const CreateTokenSchema = z
  .object({
    name: z.string().regex(TOKEN_NAME, "must be 1-64 of A-Z a-z 0-9 . _ -"),
    role: z.enum(["read", "submit"]),
    namespaces: z.array(z.string().regex(NAMESPACE_NAME, "must be 1-64 of A-Z a-z 0-9 . _ -")).min(1).max(64),
    ttl: z
      .union([z.string().max(32), z.number()])
      .transform((v, ctx) => {
        const ms = parseDuration(v);
        if (typeof ms === "string" || ms <= 0 || ms > MAX_TTL_MS) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, message: typeof ms === "string" ? ms : "must be a positive duration of at most 10 years (e.g. 30d)" });
          return z.NEVER;
        }
        return ms;
      })
      .optional(),
  })
  .strict();

export interface AuthRoutesDeps {
  /** The token store of the manager's current ZooKeeper session; undefined while joining. */
  store(): TokenStore | undefined;
  audit: AuditLog;
  bodyLimit: number;
}

function requireStore(d: AuthRoutesDeps): TokenStore {
  const s = d.store();
  if (!s) throw new UnavailableError("this manager is still joining the cluster");
  return s;
}

export function authRouter(d: AuthRoutesDeps, tokens: TokenTable): Router {
  const r = new Router();
  const admin = requireRole(tokens, "admin");

  r.post("/v1/tokens", admin, async (ctx) => {
    const body = parseBody(CreateTokenSchema, await readJson(ctx, d.bodyLimit));
    const { token, info } = await requireStore(d).create(
      { name: body.name, role: body.role, namespaces: body.namespaces, createdBy: callerOf(ctx).name, ...(body.ttl !== undefined ? { ttlMs: body.ttl } : {}) },
      tokens.configNames,
    );
    ctx.status = 201;
    ctx.set("Cache-Control", "no-store");
    ctx.body = { name: info.name, token, namespaces: info.namespaces, role: info.role, expiresAt: info.expiresAt ?? null };
  });

  r.get("/v1/tokens", admin, (ctx) => {
    ctx.body = { tokens: requireStore(d).list() };
  });

  r.delete("/v1/tokens/:name", admin, async (ctx) => {
    await requireStore(d).revoke(ctx.params.name!);
    ctx.body = { name: ctx.params.name, revoked: true };
  });

  r.get("/v1/audit", admin, async (ctx) => {
    const raw = ctx.query.limit;
    const limit = raw === undefined ? 100 : typeof raw === "string" && /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
    if (!(limit >= 1 && limit <= MAX_AUDIT_LIMIT)) throw new ValidationError([{ field: "limit", message: `must be an integer from 1 to ${MAX_AUDIT_LIMIT}` }]);
    const entries = await d.audit.read(limit);
    if (!entries) throw new UnavailableError("this manager is still joining the cluster");
    ctx.body = { entries };
  });

  return r;
}
