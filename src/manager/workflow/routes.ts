import Router from "@koa/router";
import { z } from "zod";
import type { TokenTable } from "../../common/auth.js";
import { ForbiddenError, NotFoundError, UnavailableError } from "../../common/errors.js";
import { parseBody } from "../../common/protocol.js";
import { jobIdOf } from "../../common/types.js";
import { namespaceOfJobId, requireInNamespace, seesNamespace } from "../../auth/grants.js";
import { callerOf, requireRole } from "../../http/auth.js";
import { readJson } from "../../http/body.js";
import { requirePrimary, type ManagerView } from "../http/api.js";
import type { Primary } from "../primary/primary.js";
import { parseWorkflow } from "./parse.js";
import type { WorkflowRunner } from "./runner.js";
import type { WorkflowStore } from "./store.js";
import { NODE_STATES, WHEN, WORKFLOW_STATES, workflowIdOf, type WorkflowRecord } from "./types.js";

/**
 * `POST /v1/workflows` body: the workflow file's text and the task files its
 * nodes name, by the path as written (the CLI reads them relative to the
 * workflow file). Checked here once, with the same parser the CLI ran.
 */
export const WorkflowSubmissionSchema = z
  .object({
    source: z.string().min(1, "empty workflow file"),
    /** The workflow file's name, for error messages. */
    file: z.string().max(1000).optional(),
    files: z.record(z.string()).default({}),
  })
  .strict();

/** The answers' shapes (the OpenAPI document is generated from them; the functions below build them). */
export const WorkflowSummarySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    namespace: z.string(),
    state: z.enum(WORKFLOW_STATES),
    desired: z.string(),
    submittedAt: z.number(),
    updatedAt: z.number(),
    finishedAt: z.number().optional(),
    resumes: z.number().int().min(0),
    nodes: z.record(z.enum(NODE_STATES), z.number().int().min(0)).describe("how many nodes are in each state"),
  })
  .strict();

export const WorkflowDetailSchema = WorkflowSummarySchema.extend({
  throttle: z.number().int().nullable(),
  vars: z.record(z.string()),
  nodeList: z.array(
    z
      .object({
        name: z.string(),
        after: z.array(z.string()),
        when: z.enum(WHEN),
        retry: z.number().int().min(0),
        state: z.enum(NODE_STATES),
        attempts: z.number().int().min(0),
        job: z.string().nullable(),
        reason: z.string().optional(),
        startedAt: z.number().optional(),
        finishedAt: z.number().optional(),
      })
      .strict(),
  ),
  source: z.string(),
}).strict();

export const WorkflowListSchema = z.object({ workflows: z.array(WorkflowSummarySchema) }).strict();
export const WorkflowSubmittedSchema = z.object({ id: z.string(), workflow: WorkflowSummarySchema, epoch: z.number().int() }).strict();

export function workflowSummary(r: WorkflowRecord): z.infer<typeof WorkflowSummarySchema> {
  const counts: Record<string, number> = {};
  for (const n of Object.values(r.nodes)) counts[n.state] = (counts[n.state] ?? 0) + 1;
  return {
    id: workflowIdOf(r.def.namespace, r.def.name),
    name: r.def.name,
    namespace: r.def.namespace,
    state: r.state,
    desired: r.desired,
    submittedAt: r.submittedAt,
    updatedAt: r.updatedAt,
    ...(r.finishedAt !== undefined ? { finishedAt: r.finishedAt } : {}),
    resumes: r.resumes,
    nodes: Object.fromEntries(NODE_STATES.flatMap((s) => (counts[s] ? [[s, counts[s]]] : []))),
  };
}

/** Per node, in file order: what `torca workflow status` shows. */
export function workflowDetail(r: WorkflowRecord): z.infer<typeof WorkflowDetailSchema> {
  return {
    ...workflowSummary(r),
    throttle: r.def.throttle ?? null,
    vars: r.def.vars,
    nodeList: r.def.nodes.map((d) => {
      const n = r.nodes[d.name];
      return {
        name: d.name,
        after: d.after,
        when: d.when,
        retry: d.retry,
        state: n?.state ?? "waiting",
        attempts: n?.attempt ?? 0,
        job: n?.job ? jobIdOf(r.def.namespace, n.job) : null,
        ...(n?.reason ? { reason: n.reason } : {}),
        ...(n?.startedAt !== undefined ? { startedAt: n.startedAt } : {}),
        ...(n?.finishedAt !== undefined ? { finishedAt: n.finishedAt } : {}),
      };
    }),
    source: r.source,
  };
}

export interface WorkflowRouteDeps {
  view: ManagerView;
  /** Reads workflows from ZooKeeper on any manager; undefined while joining. */
  store: () => WorkflowStore | undefined;
}

function requireStore(d: WorkflowRouteDeps): WorkflowStore {
  const s = d.store();
  if (!s) throw new UnavailableError("this manager is still joining the cluster");
  return s;
}

/** The primary (api.ts: a backup answers with a redirect to it), with its workflow runner. */
function workflowPrimary(v: ManagerView): Primary & { workflows: WorkflowRunner } {
  const p = requirePrimary(v);
  if (!p.workflows) throw new UnavailableError("this primary runs no workflows (it has no workflow store)");
  return p as Primary & { workflows: WorkflowRunner };
}

/** Reads one workflow the caller may see (403 before 404, as for jobs). */
export async function readWorkflow(store: WorkflowStore, id: string, caller: Parameters<typeof requireInNamespace>[0]): Promise<WorkflowRecord> {
  requireInNamespace(caller, "read", namespaceOfJobId(id));
  const stored = await store.get(id);
  if (!stored) throw new NotFoundError("workflow", id);
  return stored.record;
}

/** The workflow API (docs/workflows.md): submit, list, status, resume, kill. */
export function workflowRouter(d: WorkflowRouteDeps, tokens: TokenTable): Router {
  const r = new Router();
  const read = requireRole(tokens, "read");
  const submit = requireRole(tokens, "submit");
  const v = d.view;

  r.post("/v1/workflows", submit, async (ctx) => {
    const p = workflowPrimary(v);
    const body = parseBody(WorkflowSubmissionSchema, await readJson(ctx, 4 * v.bodyLimit));
    const caller = callerOf(ctx);
    // As for jobs: a file without `namespace:` lands in the token's namespace when it has exactly one.
    const only = caller.namespaces !== "*" && caller.namespaces.length === 1 ? caller.namespaces[0] : undefined;
    const def = parseWorkflow(body.source, { source: body.file ?? "workflow", files: body.files, ...(only ? { defaultNamespace: only } : {}) });
    requireInNamespace(caller, "submit", def.namespace);
    const root = def.nodes.find((n) => n.job.user === "root");
    if (root && caller.role !== "admin") throw new ForbiddenError(`node ${root.name}: user: root needs an admin token`, { field: "user" });
    const digests: Record<string, string> = {};
    for (const n of def.nodes) {
      const digest = await v.resolvePackage(n.job);
      if (digest) digests[n.name] = digest;
    }
    const rec = await p.workflows.submit(def, body.source, digests);
    const id = workflowIdOf(def.namespace, def.name);
    ctx.status = 201;
    ctx.set("Location", `/v1/workflows/${encodeURIComponent(id)}`);
    ctx.body = { id, workflow: workflowSummary(rec), epoch: p.epoch };
  });

  r.get("/v1/workflows", read, async (ctx) => {
    const caller = callerOf(ctx);
    const all = await requireStore(d).list();
    ctx.body = { workflows: all.map((s) => s.record).filter((w) => seesNamespace(caller, w.def.namespace)).sort((a, b) => b.submittedAt - a.submittedAt).map(workflowSummary) };
  });

  r.get("/v1/workflows/:id", read, async (ctx) => {
    ctx.body = workflowDetail(await readWorkflow(requireStore(d), ctx.params.id!, callerOf(ctx)));
  });

  r.post("/v1/workflows/:id/resume", submit, async (ctx) => {
    requireInNamespace(callerOf(ctx), "submit", namespaceOfJobId(ctx.params.id!));
    ctx.body = workflowDetail(await workflowPrimary(v).workflows.resume(ctx.params.id!));
  });

  r.delete("/v1/workflows/:id", submit, async (ctx) => {
    requireInNamespace(callerOf(ctx), "submit", namespaceOfJobId(ctx.params.id!));
    ctx.body = workflowDetail(await workflowPrimary(v).workflows.kill(ctx.params.id!));
  });

  return r;
}
