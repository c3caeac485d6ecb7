/**
 * Every route the manager serves, described once: the request (the zod schema
 * the route validates its body with, or the task file's keys), its query
 * parameters, the role it needs and the zod schemas of its answers. The
 * OpenAPI document (document.ts) is generated from this table; a unit test
 * checks the table against the routers' own stacks, so a route added without
 * a line here fails the build's tests.
 */
import { z, type ZodTypeAny } from "zod";
import { CreateTokenSchema } from "../../../auth/routes.js";
import * as A from "../../../common/schemas/api.js";
import { AgentReportSchema } from "../../../common/protocol.js";
import { SCHEMA_KEYS } from "../../../common/taskfile/schema.js";
import { ALLOC_MEMBER_NAME_RE, JOB_STATUSES } from "../../../common/types.js";
import { USAGE_KEYS } from "../../../history/queries.js";
import { FINISHED_STATUSES } from "../../../history/record.js";
import { CLUSTER_EVENT_TYPES } from "../../events.js";
import { DrainRequestSchema } from "../api.js";
import { CONTROLS, RestartSchema, RevertSchema, ScaleSchema, SignalSchema } from "../deployments.js";
import { SetQuotaSchema } from "../quotas.js";
import { WorkflowDetailSchema, WorkflowListSchema, WorkflowSubmissionSchema, WorkflowSubmittedSchema } from "../../workflow/routes.js";
import { CLIENT_SCRIPT_PATH } from "../pages/layout.js";
import { REMOTE_PAGES } from "../pages/remote.js";

export type Method = "get" | "post" | "put" | "delete";

/** Who may call: a token's role, a page session (cookie, or a token), or anyone. */
export type Access = "read" | "submit" | "admin" | "report" | "fetch" | "page" | "public";

export interface Body {
  contentType: string;
  /** A zod schema (converted), or a JSON Schema written from another source of truth (the task file's keys). */
  schema?: ZodTypeAny;
  jsonSchema?: Record<string, unknown>;
}

export interface Answer {
  status: number;
  description: string;
  /** Default application/json. */
  contentType?: string;
  schema?: ZodTypeAny;
}

export interface Operation {
  method: Method;
  /** The router's pattern, e.g. /v1/jobs/:id. */
  path: string;
  summary: string;
  tag: string;
  access: Access;
  query?: Record<string, { schema: ZodTypeAny; description: string }>;
  body?: Body;
  answers: Answer[];
}

const json = (status: number, description: string, schema: ZodTypeAny): Answer => ({ status, description, schema });
const text = (contentType: string, description: string, status = 200): Answer => ({ status, description, contentType, schema: z.string() });
const html = (description: string): Answer => text("text/html", description);
const jsonBody = (schema: ZodTypeAny): Body => ({ contentType: "application/json", schema });

/** The task file's keys (its one schema, common/taskfile/schema.ts); types and limits are in docs/task-file.md. */
const TASK_FILE_JSON = {
  type: "object",
  description: "A task description (docs/task-file.md); YAML with the same keys is accepted as application/yaml",
  required: ["name"],
  properties: Object.fromEntries(SCHEMA_KEYS.job.map((k) => [k, {}])),
  additionalProperties: false,
};
const taskFileBody: Body = { contentType: "application/json", jsonSchema: TASK_FILE_JSON };

const NAMESPACE = { schema: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/), description: "limit to one namespace (needed by tokens of several namespaces)" };
const SINCE = { schema: z.string().regex(/^\d+(ms|s|m|h|d)$/), description: "only what finished within this long, e.g. 24h or 7d" };

export const OPERATIONS: readonly Operation[] = [
  // ------------------------------------------------------------------ cell
  { method: "get", path: "/v1/leader", summary: "The primary manager, and whether this one is it", tag: "cell", access: "read", answers: [json(200, "the primary", A.LeaderAnswerSchema)] },
  { method: "get", path: "/healthz", summary: "Liveness of this manager", tag: "cell", access: "public", answers: [json(200, "alive", A.HealthAnswerSchema)] },
  { method: "get", path: "/metrics", summary: "Prometheus text exposition (docs/metrics.md)", tag: "cell", access: "read", answers: [text("text/plain; version=0.0.4", "metric families")] },
  { method: "get", path: "/v1/openapi.json", summary: "This document", tag: "cell", access: "public", answers: [{ status: 200, description: "an OpenAPI 3 document" }] },
  {
    method: "get",
    path: "/v1/events",
    summary: "Server-sent events: job, task, node, leader and alert changes",
    tag: "cell",
    access: "read",
    query: { types: { schema: z.string().regex(new RegExp(`^(?:${CLUSTER_EVENT_TYPES.join("|")})(?:,(?:${CLUSTER_EVENT_TYPES.join("|")}))*$`)), description: `comma-separated: ${CLUSTER_EVENT_TYPES.join(", ")}` } },
    answers: [text("text/event-stream", "an event stream, each event's data a JSON record")],
  },
  // ------------------------------------------------------------------ jobs
  {
    method: "post",
    path: "/v1/jobs",
    summary: "Submit a job (YAML or JSON task description); an Idempotency-Key header makes a retry safe",
    tag: "jobs",
    access: "submit",
    body: taskFileBody,
    answers: [json(201, "created", A.SubmitAnswerSchema), json(409, "a live job of that name exists", A.ErrorEnvelopeSchema)],
  },
  { method: "post", path: "/v1/jobs/plan", summary: "Dry run: where the job's instances would go now, or why not", tag: "jobs", access: "read", body: taskFileBody, answers: [json(200, "the plan", A.PlanAnswerSchema)] },
  { method: "get", path: "/v1/jobs", summary: "Jobs of the caller's namespaces, newest first", tag: "jobs", access: "read", query: { status: { schema: z.enum(JOB_STATUSES), description: "only jobs in this status" } }, answers: [json(200, "jobs", A.JobListSchema)] },
  { method: "get", path: "/v1/jobs/:id", summary: "A job with its spec and task instances", tag: "jobs", access: "read", answers: [json(200, "the job", A.JobDetailSchema), json(404, "no such job", A.ErrorEnvelopeSchema)] },
  { method: "delete", path: "/v1/jobs/:id", summary: "Kill a job: every task is stopped", tag: "jobs", access: "submit", answers: [json(200, "the job, now wanted stopped", A.KillAnswerSchema)] },
  { method: "get", path: "/v1/tasks/:id", summary: "A task instance (id JOB/INDEX, URL-encoded)", tag: "jobs", access: "read", answers: [json(200, "the task", A.TaskSchema), json(404, "no such task", A.ErrorEnvelopeSchema)] },
  {
    method: "get",
    path: "/v1/tasks/:id/logs",
    summary: "A task's output, from its node",
    tag: "jobs",
    access: "read",
    query: {
      stream: { schema: z.enum(["stdout", "stderr"]), description: "default stdout" },
      follow: { schema: z.enum(["1", "true"]), description: "keep the answer open and stream new output" },
      tail: { schema: z.string().regex(/^\d{1,9}$/), description: "only the last N lines" },
      member: { schema: z.string().regex(ALLOC_MEMBER_NAME_RE), description: "an alloc's task (required for an alloc; docs/allocs.md)" },
    },
    answers: [text("text/plain; charset=utf-8", "the log")],
  },
  // ------------------------------------------------------------------ nodes
  { method: "get", path: "/v1/nodes", summary: "Nodes with the tasks placed on them", tag: "nodes", access: "read", answers: [json(200, "nodes", A.NodeListSchema)] },
  { method: "post", path: "/v1/nodes/:id/drain", summary: "Drain a node (its tasks move), or undo with {undo: true} or ?undo=1", tag: "nodes", access: "admin", query: { undo: { schema: z.enum(["1", "true"]), description: "undo the drain" } }, body: jsonBody(DrainRequestSchema), answers: [json(200, "drain state", A.DrainAnswerSchema)] },
  { method: "post", path: "/v1/nodes/:id/confirm-lost", summary: "Confirm a disconnected node gone: its tasks migrate now", tag: "nodes", access: "admin", answers: [json(200, "tasks migrated", A.ConfirmLostAnswerSchema), json(409, "the node is connected", A.ErrorEnvelopeSchema)] },
  { method: "post", path: "/v1/agents/:id/report", summary: "An agent's full report of its tasks (agents only)", tag: "nodes", access: "report", body: jsonBody(AgentReportSchema), answers: [json(200, "what the primary recorded", A.ReportAnswerSchema)] },
  // ------------------------------------------------------------------ history
  {
    method: "get",
    path: "/v1/history",
    summary: "Finished runs, newest first (answered by the primary)",
    tag: "history",
    access: "read",
    query: {
      namespace: NAMESPACE,
      since: SINCE,
      state: { schema: z.enum(FINISHED_STATUSES), description: "only runs that ended so" },
      limit: { schema: z.string().regex(/^\d{1,4}$/), description: "1 to 1000, default 50" },
      cursor: { schema: z.string().regex(/^[A-Za-z0-9_=:.-]{1,200}$/), description: "`next` of the previous page" },
    },
    answers: [json(200, "a page of runs", A.HistoryPageSchema)],
  },
  { method: "get", path: "/v1/history/:job", summary: "One job's archived versions and runs, with its live state", tag: "history", access: "read", answers: [json(200, "the job's history", A.HistoryJobSchema), json(404, "never seen", A.ErrorEnvelopeSchema)] },
  {
    method: "get",
    path: "/v1/usage",
    summary: "Resource usage totals of finished tasks",
    tag: "history",
    access: "read",
    query: { by: { schema: z.enum(USAGE_KEYS), description: "group by (default namespace)" }, namespace: NAMESPACE, since: SINCE },
    answers: [json(200, "usage rows", A.UsageAnswerSchema)],
  },
  // ------------------------------------------------------------------ tenants
  { method: "get", path: "/v1/quotas", summary: "Quotas and use of the caller's namespaces", tag: "tenants", access: "read", answers: [json(200, "quotas", A.QuotaListSchema)] },
  { method: "get", path: "/v1/quotas/:ns", summary: "One namespace's quota and use", tag: "tenants", access: "read", answers: [json(200, "the quota", A.QuotaViewSchema)] },
  { method: "put", path: "/v1/quotas/:ns", summary: "Set a namespace's quota", tag: "tenants", access: "admin", body: jsonBody(SetQuotaSchema), answers: [json(200, "the quota set", A.QuotaViewSchema)] },
  { method: "delete", path: "/v1/quotas/:ns", summary: "Remove a namespace's quota", tag: "tenants", access: "admin", answers: [json(200, "no quota any more", A.QuotaViewSchema)] },
  { method: "post", path: "/v1/tokens", summary: "Create a namespaced token (the secret is shown only in the answer)", tag: "tenants", access: "admin", body: jsonBody(CreateTokenSchema), answers: [json(201, "the token", A.TokenCreatedSchema)] },
  { method: "get", path: "/v1/tokens", summary: "Tokens (without secrets)", tag: "tenants", access: "admin", answers: [json(200, "tokens", A.TokenListSchema)] },
  { method: "delete", path: "/v1/tokens/:name", summary: "Revoke a token", tag: "tenants", access: "admin", answers: [json(200, "revoked", A.TokenRevokedSchema)] },
  { method: "get", path: "/v1/audit", summary: "The audit log of mutations, newest first", tag: "tenants", access: "admin", query: { limit: { schema: z.string().regex(/^\d{1,4}$/), description: "1 to 1000, default 100" } }, answers: [json(200, "entries", A.AuditAnswerSchema)] },
  { method: "get", path: "/v1/alerts", summary: "Alert deliveries, newest first", tag: "cell", access: "read", query: { limit: { schema: z.string().regex(/^\d{1,6}$/), description: "how many" } }, answers: [json(200, "deliveries", A.AlertListSchema)] },
  // ------------------------------------------------------------------ packages and names
  {
    method: "put",
    path: "/v1/packages/:name/:version",
    summary: "Push a package (a gzipped tar) to shared storage",
    tag: "packages",
    access: "submit",
    body: { contentType: "application/gzip", jsonSchema: { type: "string", format: "binary" } },
    answers: [json(201, "stored", A.PackagePushedSchema), json(200, "the same bytes were stored already", A.PackagePushedSchema)],
  },
  { method: "get", path: "/v1/packages", summary: "Packages in shared storage", tag: "packages", access: "read", answers: [json(200, "packages", A.PackageListSchema)] },
  { method: "get", path: "/v1/blobs/:digest", summary: "A package's bytes by digest (agents)", tag: "packages", access: "fetch", answers: [{ status: 200, description: "the blob", contentType: "application/gzip" }] },
  {
    method: "get",
    path: "/v1/blobs/:digest/peers",
    summary: "Agents holding a blob, best first for the asking agent (query agent=ID), and who is pulling it already (docs/packages.md)",
    tag: "packages",
    access: "fetch",
    query: { agent: { schema: z.string(), description: "the asking agent's id" } },
    answers: [json(200, "the holders", A.BlobPeersSchema)],
  },
  { method: "post", path: "/v1/workflows", summary: "Submit a workflow (docs/workflows.md): the file's text and the task files its nodes name", tag: "workflows", access: "submit", body: jsonBody(WorkflowSubmissionSchema), answers: [json(201, "the workflow", WorkflowSubmittedSchema), json(400, "the file is invalid: each issue names its node and line", A.ErrorEnvelopeSchema)] },
  { method: "get", path: "/v1/workflows", summary: "Workflows in the caller's namespaces, newest first", tag: "workflows", access: "read", answers: [json(200, "workflows", WorkflowListSchema)] },
  { method: "get", path: "/v1/workflows/:id", summary: "One workflow, node by node", tag: "workflows", access: "read", answers: [json(200, "the workflow", WorkflowDetailSchema), json(404, "no such workflow", A.ErrorEnvelopeSchema)] },
  { method: "post", path: "/v1/workflows/:id/resume", summary: "Resume: rerun only the nodes that did not succeed (a rescue DAG)", tag: "workflows", access: "submit", answers: [json(200, "the workflow", WorkflowDetailSchema)] },
  { method: "delete", path: "/v1/workflows/:id", summary: "Kill a workflow: its running node jobs are killed, nothing more starts", tag: "workflows", access: "submit", answers: [json(200, "the workflow", WorkflowDetailSchema)] },
  { method: "get", path: "/v1/jobs/:id/versions", summary: "A live job's versions, newest first (?diff: each against the one before)", tag: "deployments", access: "read", query: { diff: { schema: z.enum(["1", "true"]), description: "include each version's diff" } }, answers: [json(200, "the versions", A.JobVersionsSchema)] },
  { method: "post", path: "/v1/jobs/:id/revert", summary: "A new version equal to an earlier one", tag: "deployments", access: "submit", body: jsonBody(RevertSchema), answers: [json(200, "the new version", A.SubmitAnswerSchema)] },
  { method: "post", path: "/v1/jobs/:id/scale", summary: "A new version with this many instances (applied in place)", tag: "deployments", access: "submit", body: jsonBody(ScaleSchema), answers: [json(200, "the new version", A.SubmitAnswerSchema)] },
  { method: "post", path: "/v1/jobs/:id/restart", summary: "Replace every instance, by the update policy or all at once", tag: "deployments", access: "submit", body: jsonBody(RestartSchema), answers: [json(200, "the deployment", A.DeploymentViewSchema)] },
  { method: "get", path: "/v1/jobs/:id/deployment", summary: "The live (or last) deployment with per-version instance counts", tag: "deployments", access: "read", answers: [json(200, "the deployment", A.DeploymentViewSchema)] },
  { method: "post", path: "/v1/jobs/:id/deployment/:op", summary: `Control the deployment: ${CONTROLS.join(" | ")}`, tag: "deployments", access: "submit", answers: [json(200, "the deployment", A.DeploymentViewSchema), json(409, "not possible in the deployment's state", A.ErrorEnvelopeSchema)] },
  { method: "post", path: "/v1/tasks/:id/signal", summary: "Send a signal to a running task's processes", tag: "tasks", access: "submit", body: jsonBody(SignalSchema), answers: [json(200, "sent", A.SignalAnswerSchema)] },
  { method: "get", path: "/v1/names", summary: "Registered service names", tag: "names", access: "read", answers: [json(200, "services", A.NameListSchema)] },
  ...(["/v1/names/:name", "/v1/names/:ns/:service"] as const).map(
    (path): Operation => ({
      method: "get",
      path,
      summary: "Endpoints of a service name; with ?index=N waits until the name changes past version N",
      tag: "names",
      access: "read",
      query: { index: { schema: z.string().regex(/^\d{1,15}$/), description: "a version from an earlier answer" }, wait: { schema: z.string().regex(/^\d{1,9}(\.\d+)?$/), description: "seconds to wait (default 30)" } },
      answers: [json(200, "the endpoints", A.NameResolutionSchema)],
    }),
  ),
  // ------------------------------------------------------------------ pages
  { method: "get", path: CLIENT_SCRIPT_PATH, summary: "The pages' script", tag: "pages", access: "public", answers: [text("application/javascript", "the script")] },
  { method: "post", path: "/login", summary: "Open a page session with a token (form field token)", tag: "pages", access: "public", body: { contentType: "application/x-www-form-urlencoded", jsonSchema: { type: "object", properties: { token: { type: "string" }, next: { type: "string" } }, required: ["token"] } }, answers: [{ status: 303, description: "to the page asked for" }, text("text/html", "the login form again", 401)] },
  { method: "post", path: "/logout", summary: "End the page session", tag: "pages", access: "public", answers: [{ status: 303, description: "to the overview" }] },
  ...[
    ["/", "Overview"],
    ["/jobs", "Jobs"],
    ["/jobs/:id", "A job"],
    ["/tasks/:jobId/:index", "A task, with its log"],
    ["/nodes", "Nodes"],
    ["/nodes/:id", "A node"],
    ["/history", "Finished runs"],
    ["/history/:job", "A job's history"],
    ["/workflows", "Workflows"],
    ["/workflows/:id", "A workflow, drawn as a graph"],
    ...REMOTE_PAGES.map((p) => [`/${p.kind}`, p.title]),
  ].map(([path, summary]): Operation => ({ method: "get", path: path!, summary: `Page: ${summary}`, tag: "pages", access: "page", answers: [html("the page")] })),
  {
    method: "post",
    path: "/v1/tasks/:id/exec",
    summary:
      "torca exec: with `Connection: Upgrade`, `Upgrade: torca-exec/1` and the command in the `Torca-Exec` header (base64url JSON {command, tty, rows?, cols?, term?}), the primary relays a session with the agent running the task; after 101 both directions carry frames (src/exec/frames.ts). Needs submit in the task's namespace; recorded as an exec event on the task.",
    tag: "tasks",
    access: "submit",
    answers: [{ status: 101, description: "switching to torca-exec/1" }, json(409, "the task is not running", A.ErrorEnvelopeSchema), json(403, "the caller may not submit in the task's namespace", A.ErrorEnvelopeSchema)],
  },
  { method: "get", path: "/workflows/:id/live", summary: "A workflow's graph (SVG) and node table, for the page's live updates", tag: "pages", access: "page", answers: [html("the fragment")] },
  { method: "get", path: "/charts/tasks/:jobId/:index/:metric", summary: "A task's usage over time (metric cpu or memory) as an SVG chart, for the task page", tag: "pages", access: "page", answers: [text("image/svg+xml", "the chart")] },
  { method: "get", path: "/charts/nodes/:id/:metric", summary: "A node's usage over time (metric cpu or memory) as an SVG chart, for the node page", tag: "pages", access: "page", answers: [text("image/svg+xml", "the chart")] },
  { method: "get", path: "/actions/:kind/:id/:name", summary: "Page: confirm an action (kind job, task or node; name kill, restart, drain, undrain) with the session's CSRF token", tag: "pages", access: "page", answers: [html("the confirmation form")] },
  {
    method: "post",
    path: "/actions/:kind/:id/:name",
    summary: "Carry out a confirmed page action: needs the page session, its CSRF token (form field csrf) and the action's role in the namespace, on the primary",
    tag: "pages",
    access: "page",
    body: { contentType: "application/x-www-form-urlencoded", jsonSchema: { type: "object", properties: { csrf: { type: "string" } }, required: ["csrf"] } },
    answers: [{ status: 303, description: "back to the page the action was taken from" }, html("the refusal, with 401, 403, 404, 409 or 503")],
  },
];
