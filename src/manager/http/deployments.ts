import Router from "@koa/router";
import { z } from "zod";
import type { TokenTable } from "../../common/auth.js";
import { NotFoundError } from "../../common/errors.js";
import { parseBody, TASK_SIGNALS } from "../../common/protocol.js";
import { parseTaskId, type Job } from "../../common/types.js";
import { namespaceOfJobId, requireInNamespace } from "../../auth/grants.js";
import { callerOf, requireRole } from "../../http/auth.js";
import { readJson } from "../../http/body.js";
import { queryFlag } from "../../http/query.js";
import { deploymentView } from "../deployment/view.js";
import { diffSpecs } from "../versions/diff.js";
import type { JobVersion } from "../versions/store.js";
import { requirePrimary, requireStore, submitAnswer, type ManagerView } from "./api.js";

/**
 * Versions and deployments of a job:
 *   GET  /v1/jobs/:id/versions[?diff]      read: {job, namespace, version, versions: [{version, submittedAt, stable, revertOf?, source, diff?}]}
 *   POST /v1/jobs/:id/revert               submit: {version}: a new version equal to that one
 *   POST /v1/jobs/:id/scale                submit: {instances}: a new version with that many instances (in place)
 *   POST /v1/jobs/:id/restart              submit: {allAtOnce?}: every instance replaced, by the update policy or all together
 *   GET  /v1/jobs/:id/deployment           read: the live (or last) deployment with per-version instance counts
 *   POST /v1/jobs/:id/deployment/:op       submit: promote | pause | resume | fail
 *   POST /v1/tasks/:id/signal              submit: {signal}: to the task's running process
 * The versions live on the primary (versions/store.ts); a backup answers with a redirect to it.
 */

export const RevertSchema = z.object({ version: z.number().int().min(0) }).strict();
export const ScaleSchema = z.object({ instances: z.number().int().min(0).max(10_000) }).strict();
export const RestartSchema = z.object({ allAtOnce: z.boolean().optional() }).strict();
export const CONTROLS = ["promote", "pause", "resume", "fail"] as const;
export const SignalSchema = z.object({ signal: z.enum(TASK_SIGNALS) }).strict();

/** The versions of a job as `torca history JOB` shows them (newest first); with `diff`, each against the one before it. */
export function versionsView(versions: readonly JobVersion[], current: number | undefined, withDiff: boolean) {
  return versions.map((v, i) => {
    const previous = versions[i + 1];
    return {
      version: v.version,
      submittedAt: v.submittedAt,
      stable: v.stable === true,
      running: v.version === current,
      ...(v.revertOf !== undefined ? { revertOf: v.revertOf } : {}),
      ...(v.deployment ? { deployment: v.deployment } : {}),
      source: v.source,
      ...(withDiff && previous ? { diff: diffSpecs(previous, v) } : {}),
    };
  });
}

export function deploymentsRouter(v: ManagerView, tokens: TokenTable): Router {
  const r = new Router();
  const read = requireRole(tokens, "read");
  const submit = requireRole(tokens, "submit");

  const jobIn = (id: string, grant: "read" | "submit", caller: ReturnType<typeof callerOf>): Job => {
    requireInNamespace(caller, grant, namespaceOfJobId(id));
    const job = requireStore(v).jobs.get(id);
    if (!job) throw new NotFoundError("job", id);
    return job;
  };

  r.get("/v1/jobs/:id/versions", read, async (ctx) => {
    const job = jobIn(ctx.params.id!, "read", callerOf(ctx));
    const versions = await requirePrimary(v).versions(job.id);
    ctx.body = { job: job.spec.name, namespace: job.spec.namespace, version: job.version ?? 0, versions: versionsView(versions, job.version ?? 0, queryFlag(ctx, "diff")) };
  });

  r.post("/v1/jobs/:id/revert", submit, async (ctx) => {
    const job = jobIn(ctx.params.id!, "submit", callerOf(ctx));
    const req = parseBody(RevertSchema, await readJson(ctx, v.bodyLimit));
    const p = requirePrimary(v);
    ctx.body = submitAnswer(await p.revert(job.id, req.version), p.epoch);
  });

  r.post("/v1/jobs/:id/scale", submit, async (ctx) => {
    const job = jobIn(ctx.params.id!, "submit", callerOf(ctx));
    const req = parseBody(ScaleSchema, await readJson(ctx, v.bodyLimit));
    const p = requirePrimary(v);
    ctx.body = submitAnswer(await p.scale(job.id, req.instances), p.epoch);
  });

  r.post("/v1/jobs/:id/restart", submit, async (ctx) => {
    const job = jobIn(ctx.params.id!, "submit", callerOf(ctx));
    const req = parseBody(RestartSchema, await readJson(ctx, v.bodyLimit));
    const next = await requirePrimary(v).restart(job.id, req.allAtOnce === true);
    ctx.body = deploymentView(next, requireStore(v).tasksOf(next.id), Date.now());
  });

  r.get("/v1/jobs/:id/deployment", read, (ctx) => {
    const job = jobIn(ctx.params.id!, "read", callerOf(ctx));
    ctx.body = deploymentView(job, requireStore(v).tasksOf(job.id), Date.now());
  });

  r.post("/v1/jobs/:id/deployment/:op", submit, async (ctx) => {
    const op = CONTROLS.find((c) => c === ctx.params.op);
    if (!op) throw new NotFoundError("deployment operation", ctx.params.op!);
    const job = jobIn(ctx.params.id!, "submit", callerOf(ctx));
    const next = await requirePrimary(v).deployment(job.id, op);
    ctx.body = deploymentView(next, requireStore(v).tasksOf(next.id), Date.now());
  });

  r.post("/v1/tasks/:id/signal", submit, async (ctx) => {
    const ref = parseTaskId(ctx.params.id!);
    requireInNamespace(callerOf(ctx), "submit", namespaceOfJobId(ref?.jobId ?? ctx.params.id!));
    const req = parseBody(SignalSchema, await readJson(ctx, v.bodyLimit));
    const t = await requirePrimary(v).signal(ctx.params.id!, req.signal);
    ctx.body = { task: t.id, attempt: t.attempt, node: t.nodeId, signal: req.signal };
  });

  return r;
}
