import Router from "@koa/router";
import { z } from "zod";
import type { Context } from "koa";
import type { Got } from "got";
import type { TokenTable } from "../../common/auth.js";
import { ForbiddenError, NotFoundError, NotPrimaryError, UnavailableError, ValidationError } from "../../common/errors.js";
import { httpErrorToTorca } from "../../common/http.js";
import { AgentReportSchema, parseBody } from "../../common/protocol.js";
import { checkLogMember } from "../../common/alloc.js";
import { parseTaskFileOffThread } from "../../common/taskfile/off-thread.js";
import { JOB_STATUSES, parseTaskId, type Job, type JobSpec, type NodeInfo, type TaskInstance, type TaskState } from "../../common/types.js";
import type { LeaderInfo } from "../../coord/election.js";
import type { StateStore } from "../../coord/state-store.js";
import type { Collector } from "../collector/collector.js";
import { CLUSTER_EVENT_TYPES, type ClusterEvent, type EventBus } from "../events.js";
import { bodyHashOf, checkIdempotencyKey, idempotencyId } from "../idempotency/keys.js";
import type { LazyHistory } from "../../history/lazy.js";
import type { SubmitOutcome } from "../deployment/rollouts.js";
import type { Primary } from "../primary/primary.js";
import type { QuotaStore } from "../../auth/quotas.js";
import { callerOf, requireRole } from "../../http/auth.js";
import { namespaceOfAlertKey, namespaceOfJobId, requireInNamespace, seesNamespace, type Caller, type Grant } from "../../auth/grants.js";
import { readJson, readText } from "../../http/body.js";
import { MEMBER_QUERY, queryFlag, queryValue, TAIL_LINES } from "../../http/query.js";
import { withEstimate } from "../usage/view.js";
import { streamEvents } from "./sse.js";

/** What the HTTP layer needs from the running manager; the pieces change on failover. */
export interface ManagerView {
  readonly id: string;
  readonly url: string;
  store(): StateStore | undefined;
  collector(): Collector | undefined;
  /** Set only while this manager is the primary. */
  primary(): Primary | undefined;
  /** The namespaces' quotas; undefined while joining. */
  quotas(): QuotaStore | undefined;
  /** The history store's handle; set only while this manager is the primary (the one process that opens it). */
  history(): LazyHistory | undefined;
  leader(): LeaderInfo | undefined;
  zookeeperState(): string;
  resolvePackage(spec: JobSpec): Promise<string | undefined>;
  readonly bus: EventBus;
  readonly http: Got;
  readonly bodyLimit: number;
}

/** `counts`: the job's tasks in each recorded state (the store's TaskTally.byState). */
export function jobSummary(job: Job, counts: Readonly<Partial<Record<TaskState, number>>>) {
  return {
    id: job.id,
    name: job.spec.name,
    namespace: job.spec.namespace,
    type: job.spec.type,
    priority: job.spec.priority,
    instances: job.spec.instances,
    status: job.status,
    desired: job.desired,
    submittedAt: job.submittedAt,
    updatedAt: job.updatedAt,
    tasks: { ...counts },
    version: job.version ?? 0,
    ...(job.deployment ? { deployment: job.deployment } : {}),
  };
}

/** The answer to a submission: the job, its version, and whether it changed anything (with the diff for a new version). */
export function submitAnswer(o: SubmitOutcome, epoch: number) {
  const message =
    o.change === "unchanged" ? `job ${o.job.id} is unchanged: version ${o.version} is running as submitted` : o.change === "new-version" ? `job ${o.job.id} version ${o.version}: deployment started` : `job ${o.job.id} created`;
  return { id: o.job.id, job: jobSummary(o.job, {}), epoch, version: o.version, change: o.change, message, ...(o.diff && o.change === "new-version" ? { diff: o.diff } : {}) };
}

/** A node with the tasks placed on it (from the store's node index: a filter over every task per node was O(nodes × tasks)). */
export function nodeView(n: NodeInfo, onNode: Iterable<TaskInstance>) {
  const mine: string[] = [];
  for (const t of onNode) if (t.nodeId === n.id && (t.state === "running" || t.state === "dispatched")) mine.push(t.id);
  return { ...n, tasks: mine };
}

const EVENT_TYPES_RE = new RegExp(`^(?:${CLUSTER_EVENT_TYPES.join("|")})(?:,(?:${CLUSTER_EVENT_TYPES.join("|")}))*$`);

/** `POST /v1/nodes/:id/drain` body: empty (drain), or `{undo: true}`. */
export const DrainRequestSchema = z.object({ undo: z.boolean().optional() }).strict();

export function requireStore(v: ManagerView): StateStore {
  const s = v.store();
  if (!s) throw new UnavailableError("this manager is still joining the cluster");
  return s;
}

export function requirePrimary(v: ManagerView): Primary {
  const p = v.primary();
  if (p?.isActive) return p;
  const l = v.leader();
  throw new NotPrimaryError(l && l.id !== v.id ? l.url : undefined, v.zookeeperState() !== "connected");
}

/** The task, after checking the caller may read its namespace (403 before 404, so ids of other tenants' tasks reveal nothing). */
export function findTask(store: StateStore, id: string, caller: Caller): TaskInstance {
  const ref = parseTaskId(id);
  requireInNamespace(caller, "read", namespaceOfJobId(ref?.jobId ?? id));
  const t = ref ? store.task(ref.jobId, ref.index) : undefined;
  if (!t) throw new NotFoundError("task", id);
  return t;
}

/** Whether a task description names its namespace (the parsed spec has "default" either way). */
function namesNamespace(source: string, json: boolean): boolean {
  if (json) {
    try {
      const o = JSON.parse(source) as unknown;
      return o !== null && typeof o === "object" && Object.hasOwn(o, "namespace");
    } catch {
      // The task-file parser accepted it as YAML after all: look at it as YAML.
    }
  }
  return /^(?:namespace|"namespace"|'namespace')[ \t]*:|[{,][ \t]*(?:namespace|"namespace")[ \t]*:/m.test(source);
}

/**
 * The submitted spec, in the caller's namespace: a file without `namespace:`
 * lands in the token's namespace when it has exactly one; the caller must
 * hold `grant` there, and only an admin may ask for `user: root`.
 */
async function parseSubmission(ctx: Context, v: ManagerView, grant: Grant): Promise<{ spec: JobSpec; source: string; digest?: string }> {
  const source = await readText(ctx, v.bodyLimit);
  if (!source.trim()) throw new ValidationError([{ field: "", message: "empty request body: send a task description (YAML or JSON)" }]);
  const ct = ctx.get("content-type");
  const spec = await parseTaskFileOffThread(source, { format: ct.includes("json") ? "json" : undefined, source: "task description" });
  const caller = callerOf(ctx);
  if (caller.namespaces !== "*" && caller.namespaces.length === 1 && !namesNamespace(source, ct.includes("json"))) spec.namespace = caller.namespaces[0]!;
  requireInNamespace(caller, grant, spec.namespace);
  if (spec.user === "root" && caller.role !== "admin") {
    throw new ForbiddenError(`token "${caller.name}" (role ${caller.role}) may not run tasks as root: user: root needs an admin token (and agents with agent.allowRootTasks)`, { field: "user" });
  }
  const digest = await v.resolvePackage(spec);
  return { spec, source, ...(digest ? { digest } : {}) };
}

/** Job, task and alert events are shown to tokens of their namespace only; node and leader events to every reader. */
function eventVisible(caller: Caller, e: ClusterEvent): boolean {
  if (caller.namespaces === "*") return true;
  switch (e.type) {
    case "job":
      return seesNamespace(caller, namespaceOfJobId(e.id));
    case "task":
      return seesNamespace(caller, namespaceOfJobId(parseTaskId(e.id)?.jobId ?? e.id));
    case "alert": {
      const ns = namespaceOfAlertKey((e.data as { key?: string } | undefined)?.key ?? "");
      return ns !== undefined && seesNamespace(caller, ns);
    }
    default:
      return true;
  }
}

export function apiRouter(v: ManagerView, tokens: TokenTable): Router {
  const r = new Router();
  const read = requireRole(tokens, "read");
  const submit = requireRole(tokens, "submit");
  const admin = requireRole(tokens, "admin");

  r.get("/v1/leader", read, (ctx) => {
    const l = v.leader();
    if (!l) throw new UnavailableError("no primary is elected right now");
    ctx.body = { id: l.id, url: l.url, epoch: l.epoch, since: l.since, self: v.id, isPrimary: v.primary()?.isActive === true };
  });

  r.post("/v1/jobs", submit, async (ctx) => {
    const p = requirePrimary(v);
    const { spec, source, digest } = await parseSubmission(ctx, v, "submit");
    // Idempotency-Key: a repeated key gets the first answer (idempotency/keys.ts).
    const idempotencyKey = ctx.get("idempotency-key");
    if (idempotencyKey) {
      const key = checkIdempotencyKey(idempotencyKey);
      const answerOf = (o: SubmitOutcome) => submitAnswer(o, p.epoch);
      const answer = await p.submitIdempotent({ key, id: idempotencyId(key, spec.namespace), bodyHash: bodyHashOf(source) }, spec, source, digest, answerOf);
      ctx.status = answer.status;
      ctx.set("Location", `/v1/jobs/${encodeURIComponent(String(answer.body.id))}`);
      ctx.body = answer.body;
      return;
    }
    const outcome = await p.submit(spec, source, digest);
    ctx.status = outcome.change === "unchanged" ? 200 : 201;
    ctx.set("Location", `/v1/jobs/${encodeURIComponent(outcome.job.id)}`);
    ctx.body = submitAnswer(outcome, p.epoch);
  });

  r.post("/v1/jobs/plan", read, async (ctx) => {
    const p = requirePrimary(v);
    const { spec, digest } = await parseSubmission(ctx, v, "read");
    const result = p.plan(spec, digest);
    const version = p.planVersion(spec, digest);
    ctx.body = { placeable: result.unplaced.length === 0, ...result, ...(version ? { version } : {}) };
  });

  r.get("/v1/jobs", read, (ctx) => {
    const store = requireStore(v);
    const status = queryValue(ctx, "status", JOB_STATUSES);
    const caller = callerOf(ctx);
    const jobs = [...store.jobs.values()].filter((j) => (!status || j.status === status) && seesNamespace(caller, j.spec.namespace)).sort((a, b) => b.submittedAt - a.submittedAt);
    ctx.body = { jobs: jobs.map((j) => jobSummary(j, store.taskTally(j.id).byState)) };
  });

  r.get("/v1/jobs/:id", read, (ctx) => {
    const store = requireStore(v);
    requireInNamespace(callerOf(ctx), "read", namespaceOfJobId(ctx.params.id!));
    const job = store.jobs.get(ctx.params.id!);
    if (!job) throw new NotFoundError("job", ctx.params.id!);
    ctx.body = { ...jobSummary(job, store.taskTally(job.id).byState), spec: job.spec, source: job.source, packageDigest: job.packageDigest, cron: job.cron, taskList: store.tasksOf(job.id) };
  });

  r.delete("/v1/jobs/:id", submit, async (ctx) => {
    requireInNamespace(callerOf(ctx), "submit", namespaceOfJobId(ctx.params.id!));
    const job = await requirePrimary(v).kill(ctx.params.id!);
    ctx.body = { id: job.id, desired: job.desired, status: job.status };
  });

  r.get("/v1/tasks/:id", read, (ctx) => {
    const store = requireStore(v);
    const task = findTask(store, ctx.params.id!, callerOf(ctx));
    ctx.body = withEstimate(task, store.jobs.get(task.jobId), v.primary()?.reservations);
  });

  r.get("/v1/tasks/:id/logs", read, async (ctx) => {
    const stream = queryValue(ctx, "stream", ["stdout", "stderr"]) ?? "stdout";
    const follow = queryFlag(ctx, "follow");
    const tail = queryValue(ctx, "tail", TAIL_LINES);
    const member = queryValue(ctx, "member", MEMBER_QUERY);
    const store = requireStore(v);
    const t = findTask(store, ctx.params.id!, callerOf(ctx));
    checkLogMember(t.id, store.jobs.get(t.jobId)?.spec.alloc?.tasks.map((m) => m.name), member);
    const nodeId = t.nodeId ?? t.lastNodeId;
    if (!nodeId || t.attempt === 0) throw new NotFoundError("logs of task", t.id);
    const node = nodeId ? v.collector()?.node(nodeId) : undefined;
    if (!node || node.state === "lost") throw new UnavailableError(`the node that ran ${t.id} (${nodeId ?? "none"}) is not reachable`);
    const q = new URLSearchParams();
    q.set("stream", stream);
    if (follow) q.set("follow", "1");
    if (tail !== undefined) q.set("tail", tail);
    q.set("attempt", String(t.attempt));
    if (member !== undefined) q.set("member", member);
    const upstream = v.http.stream(`${node.url}/v1/tasks/${encodeURIComponent(t.id)}/logs?${q}`, { timeout: {}, retry: { limit: 0 } });
    await new Promise<void>((resolve, reject) => {
      upstream.once("response", (res: { statusCode: number }) => {
        if (res.statusCode >= 400) return;
        resolve();
      });
      upstream.once("error", (e: unknown) => reject(httpErrorToTorca(e, `logs of ${t.id} from ${node.id}`)));
    });
    ctx.req.socket.setTimeout(0);
    ctx.set("Content-Type", "text/plain; charset=utf-8");
    ctx.req.on("close", () => upstream.destroy());
    ctx.body = upstream;
  });

  r.get("/v1/nodes", read, (ctx) => {
    const store = requireStore(v);
    const caller = callerOf(ctx);
    const visible = (t: TaskInstance) => seesNamespace(caller, namespaceOfJobId(t.jobId));
    ctx.body = { nodes: (v.collector()?.nodes() ?? []).map((n) => nodeView(n, [...store.tasksOnNode(n.id)].filter(visible))) };
  });

  r.post("/v1/nodes/:id/drain", admin, async (ctx) => {
    const p = requirePrimary(v);
    const undoQuery = queryFlag(ctx, "undo");
    const body = parseBody(DrainRequestSchema, await readJson(ctx, v.bodyLimit));
    const undo = body.undo === true || undoQuery;
    await p.drain(ctx.params.id!, !undo);
    ctx.body = { id: ctx.params.id, draining: !undo };
  });

  r.post("/v1/nodes/:id/confirm-lost", admin, async (ctx) => {
    const { tasks } = await requirePrimary(v).confirmLost(ctx.params.id!);
    ctx.body = { id: ctx.params.id, lost: true, tasks };
  });

  r.post("/v1/agents/:id/report", requireRole(tokens, "report"), async (ctx) => {
    const p = requirePrimary(v);
    const report = parseBody(AgentReportSchema, await readJson(ctx, 16 * v.bodyLimit));
    if (report.agentId !== ctx.params.id) throw new ValidationError([{ field: "agentId", message: "does not match the URL" }]);
    const { recorded, disconnectGraceMs } = await p.handleReport(report);
    ctx.body = { epoch: p.epoch, recorded, disconnectGraceMs };
  });

  r.get("/v1/events", read, (ctx) => {
    const listed = queryValue(ctx, "types", { pattern: EVENT_TYPES_RE, what: `a comma-separated list of ${CLUSTER_EVENT_TYPES.join(", ")}` });
    const types = listed === undefined ? undefined : new Set(listed.split(","));
    const caller = callerOf(ctx);
    streamEvents(ctx, v.bus, (e) => (!types || types.has(e.type)) && eventVisible(caller, e));
  });

  return r;
}
