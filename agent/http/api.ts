import Router from "@koa/router";
import { join } from "node:path";
import type { TokenTable } from "../../src/common/auth.js";
import { NotFoundError, toTorcaError, ValidationError } from "../../src/common/errors.js";
import { parseBody, SignalRequestSchema, StopRequestSchema, TaskBatchSchema, TaskDispatchSchema, type TaskBatchResult, type TaskDispatch } from "../../src/common/protocol.js";
import { requireRole } from "../../src/http/auth.js";
import { readJson } from "../../src/http/body.js";
import { MEMBER_QUERY, queryFlag, queryValue, TAIL_LINES } from "../../src/http/query.js";
import type { TaskRunner } from "../tasks/runner.js";
import type { UsageHistory } from "../usage-history.js";
import { serveLog } from "./logs.js";
import { MEMBERS_DIR } from "../driver/alloc.js";
import { checkLogMember } from "../../src/common/alloc.js";

/** The agent's API for the manager (and for `torca logs` through the manager). */
export interface AgentApiDeps {
  runner: TaskRunner;
  /** Recent usage per task and of the machine (the pages' graphs). */
  usage: UsageHistory;
  /** Stops a task, after taking it out of naming and waiting `drainMs` when asked to (tasks/drain.ts). */
  stop(taskId: string, attempt: number | undefined, graceMs: number, drainMs: number): Promise<boolean>;
  /** Checks a message's epoch against the highest seen (and records it). */
  admitEpoch(epoch: number): void;
  status(): unknown;
  bodyLimit: number;
}

export function agentRouter(deps: AgentApiDeps, tokens: TokenTable): Router {
  const r = new Router();
  // control: the managers' token (or the admin token in configs without one); an agent's own token holds neither grant.
  const control = requireRole(tokens, "control");
  const read = requireRole(tokens, "read");

  /** One start order, as both start routes carry it out: the epoch is checked first (a stale one is refused and starts nothing). */
  const start = async (d: TaskDispatch) => {
    deps.admitEpoch(d.epoch);
    const { created } = await deps.runner.start(d);
    return { taskId: d.taskId, attempt: d.attempt, created, state: deps.runner.get(d.taskId)?.state };
  };

  r.put("/v1/tasks/:id", control, async (ctx) => {
    const d = parseBody(TaskDispatchSchema, await readJson(ctx, deps.bodyLimit)) as unknown as TaskDispatch;
    if (d.taskId !== ctx.params.id) throw new ValidationError([{ field: "taskId", message: "does not match the URL" }]);
    const { created, ...answer } = await start(d);
    ctx.status = created ? 201 : 200;
    ctx.body = answer;
  });

  // The primary's start orders of one round in one request; each is answered on its own (TaskBatchResult).
  r.post("/v1/tasks/batch", control, async (ctx) => {
    const { tasks } = parseBody(TaskBatchSchema, await readJson(ctx, 16 * deps.bodyLimit));
    const results = await Promise.all(
      (tasks as unknown as TaskDispatch[]).map(async (d): Promise<TaskBatchResult> => {
        try {
          return await start(d);
        } catch (e) {
          const err = toTorcaError(e);
          return { taskId: d.taskId, attempt: d.attempt, error: { status: err.status, ...err.toJSON() } };
        }
      }),
    );
    ctx.body = { results };
  });

  r.post("/v1/tasks/:id/stop", control, async (ctx) => {
    const req = parseBody(StopRequestSchema, await readJson(ctx, deps.bodyLimit));
    deps.admitEpoch(req.epoch);
    const found = await deps.stop(ctx.params.id!, req.attempt, req.graceMs ?? 5000, req.drainMs ?? 0);
    if (!found) throw new NotFoundError("task", ctx.params.id!);
    ctx.body = { taskId: ctx.params.id, stopping: true };
  });

  r.post("/v1/tasks/:id/signal", control, async (ctx) => {
    const req = parseBody(SignalRequestSchema, await readJson(ctx, deps.bodyLimit));
    deps.admitEpoch(req.epoch);
    if (!(await deps.runner.signal(ctx.params.id!, req.attempt, req.signal))) throw new NotFoundError("running task", `${ctx.params.id!}#${req.attempt}`);
    ctx.body = { taskId: ctx.params.id, attempt: req.attempt, signal: req.signal };
  });

  r.get("/v1/tasks", read, (ctx) => {
    ctx.body = { tasks: deps.runner.report() };
  });

  r.get("/v1/tasks/:id", read, (ctx) => {
    const rec = deps.runner.get(ctx.params.id!);
    if (!rec) throw new NotFoundError("task", ctx.params.id!);
    const spec = rec.dispatch.spec;
    const alloc = spec.alloc ? { alloc: { tasks: spec.alloc.tasks.map((m) => ({ ...m, env: Object.keys(m.env) })) } } : {};
    ctx.body = { ...rec, dispatch: { ...rec.dispatch, spec: { ...spec, env: Object.keys(spec.env), ...alloc } } };
  });

  r.get("/v1/tasks/:id/logs", read, async (ctx) => {
    const id = ctx.params.id!;
    const stream = queryValue(ctx, "stream", ["stdout", "stderr"]) ?? "stdout";
    const tailText = queryValue(ctx, "tail", TAIL_LINES);
    const tail = tailText === undefined ? undefined : Number(tailText);
    const follow = queryFlag(ctx, "follow");
    const attemptText = queryValue(ctx, "attempt", { pattern: /^[1-9]\d{0,8}$/, what: "an attempt number (1, 2, ...)" });
    const member = queryValue(ctx, "member", MEMBER_QUERY);
    const rec = deps.runner.get(id);
    const attempt = attemptText !== undefined ? Number(attemptText) : rec?.dispatch.attempt;
    if (attempt === undefined) throw new NotFoundError("task", id);
    if (rec) checkLogMember(id, rec.dispatch.spec.alloc?.tasks.map((m) => m.name), member);
    const dir = deps.runner.dirOf(id, attempt);
    await serveLog(ctx, member === undefined ? join(dir, stream) : join(dir, MEMBERS_DIR, member, stream), {
      follow,
      ...(tail !== undefined ? { tail } : {}),
      isDone: () => {
        const cur = deps.runner.get(id);
        return !cur || cur.dispatch.attempt !== attempt || cur.state === "exited";
      },
    });
  });

  // Usage over the last window, one sample per report interval: {intervalMs, samples: [{at, cpu (cores), memory (bytes)}]}.
  r.get("/v1/tasks/:id/usage", read, (ctx) => {
    const h = deps.usage.task(ctx.params.id!);
    if (!h && !deps.runner.get(ctx.params.id!)) throw new NotFoundError("task", ctx.params.id!);
    ctx.body = { taskId: ctx.params.id, intervalMs: deps.usage.intervalMs, attempt: h?.attempt ?? deps.runner.get(ctx.params.id!)!.dispatch.attempt, samples: h?.samples ?? [] };
  });

  r.get("/v1/usage", read, (ctx) => {
    ctx.body = { intervalMs: deps.usage.intervalMs, samples: deps.usage.machine() };
  });

  r.get("/v1/status", read, (ctx) => {
    ctx.body = deps.status();
  });

  return r;
}

