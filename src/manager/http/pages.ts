import Router from "@koa/router";
import type { Context } from "koa";
import type { TokenTable } from "../../common/auth.js";
import type { StateStore } from "../../coord/state-store.js";
import type { ManagerView } from "./api.js";
import { jobRef, sinceOf } from "./history.js";
import { FINISHED_STATUSES } from "../../history/record.js";
import { readText } from "../../http/body.js";
import { CLIENT_SCRIPT } from "./pages/client.js";
import { sendPage } from "../../http/pages/document.js";
import { esc } from "../../http/pages/html.js";
import { historyOnPrimary, historyPage, jobHistoryPage, HISTORY_SINCE } from "./pages/history.js";
import { jobPage } from "./pages/job.js";
import { jobsPage, JOB_STATUSES, JOB_TYPES } from "./pages/jobs.js";
import { CLIENT_SCRIPT_PATH, loginPage, page, type PageKind } from "./pages/layout.js";
import { nodePage, nodesPage } from "./pages/nodes.js";
import { overviewPage } from "./pages/overview.js";
import { remotePage, REMOTE_PAGES } from "./pages/remote.js";
import { clearSession, pageAuth, safeNext, setSession, tokenAllowsRead, urlWithoutToken } from "./pages/session.js";
import { fetchUsage, taskPage } from "./pages/task.js";
import { nodeReservationSection, taskReservationCard } from "./pages/reservations.js";
import { actionButtons, registerActionRoutes, sessionCaller } from "./pages/actions.js";
import { windowQuery } from "./pages/task-window.js";
import { chartsSection, fetchNodeHistory, fetchTaskHistory, METRICS, nodeChart, nodeChartsPath, taskChart, taskChartsPath, type Metric } from "./pages/usage-graphs.js";


const LOGIN_BODY_LIMIT = 16 * 1024;

function render(ctx: Context, v: ManagerView, kind: PageKind, title: string, body: string, status = 200): void {
  sendPage(ctx, status, page(v, { kind, title, body, path: ctx.path }));
}

function notFound(ctx: Context, v: ManagerView, what: string): void {
  render(ctx, v, "unavailable", "Not found", `<h1>Not found</h1><p>${esc(what)}</p>`, 404);
}

/** The state store, or a 503 page while this manager is still joining the cluster. */
function storeOr503(ctx: Context, v: ManagerView): StateStore | undefined {
  const s = v.store();
  if (!s) render(ctx, v, "unavailable", "Joining", `<h1>Joining the cluster</h1><p>This manager (${esc(v.id)}) has no cluster state yet; ZooKeeper is ${esc(v.zookeeperState())}. Reload in a moment.</p>`, 503);
  return s;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[]): T | undefined {
  return typeof value === "string" && (allowed as readonly string[]).includes(value) ? (value as T) : undefined;
}

/**
 * Server-rendered status pages; every piece of user data goes through `esc`,
 * and the client script adds data only as text. Pages need a session (see
 * pages/session.ts); the login form and the static script do not.
 */
export function pagesRouter(v: ManagerView, tokens: TokenTable): Router {
  const r = new Router();
  const loginForm = (ctx: Context, error?: string) => sendPage(ctx, 401, loginPage(urlWithoutToken(ctx), error));
  const auth = pageAuth({ tokens, loginForm });

  r.get(CLIENT_SCRIPT_PATH, (ctx) => {
    ctx.type = "application/javascript; charset=utf-8";
    ctx.set("Cache-Control", "no-cache");
    ctx.set("X-Content-Type-Options", "nosniff");
    ctx.body = CLIENT_SCRIPT;
  });

  r.post("/login", async (ctx) => {
    const form = new URLSearchParams(await readText(ctx, LOGIN_BODY_LIMIT));
    const token = (form.get("token") ?? "").trim();
    const next = safeNext(form.get("next"));
    if (!tokenAllowsRead(tokens, token)) return sendPage(ctx, 401, loginPage(next, "That token is not valid for this cell."));
    setSession(ctx, token);
    ctx.status = 303;
    ctx.redirect(next);
  });

  r.post("/logout", (ctx) => {
    clearSession(ctx);
    ctx.status = 303;
    ctx.redirect("/");
  });

  r.get("/", auth, async (ctx) => {
    const store = storeOr503(ctx, v);
    if (!store) return;
    // Only an open store is asked: viewing the overview never opens the history store (its first start stalls the process).
    const archived = await v.history()?.peek()?.countJobs().catch(() => undefined);
    render(ctx, v, "overview", "Overview", overviewPage(v, store, v.collector()?.nodes() ?? [], archived));
  });

  r.get("/history", auth, async (ctx) => {
    const history = await v.history()?.ready();
    if (!history) return render(ctx, v, "history", "History", historyOnPrimary(v.leader()?.url, ctx.originalUrl), v.history() ? 503 : 200);
    const namespace = typeof ctx.query.namespace === "string" && /^[a-z0-9][a-z0-9-]{0,62}$/.test(ctx.query.namespace) ? ctx.query.namespace : undefined;
    const state = oneOf(ctx.query.state, FINISHED_STATUSES);
    const since = oneOf(ctx.query.since, HISTORY_SINCE);
    const cursor = typeof ctx.query.cursor === "string" && ctx.query.cursor.length <= 200 ? ctx.query.cursor : undefined;
    const page = await history.listFinished({ ...(namespace ? { namespace } : {}), ...(state ? { state } : {}), ...(since ? { since: sinceOf(since, Date.now())! } : {}), ...(cursor ? { cursor } : {}) });
    render(ctx, v, "history", "History", historyPage(page, { ...(namespace ? { namespace } : {}), ...(state ? { state } : {}), ...(since ? { since } : {}) }));
  });

  r.get("/history/:job", auth, async (ctx) => {
    const history = await v.history()?.ready();
    if (!history) return render(ctx, v, "history", "History", historyOnPrimary(v.leader()?.url, ctx.originalUrl), v.history() ? 503 : 200);
    const id = ctx.params.job!;
    const { namespace, name } = jobRef(id);
    const view = await history.jobView(name, namespace);
    render(ctx, v, "history", `History of ${id}`, jobHistoryPage(id, view, v.store()?.jobs.has(id) === true));
  });

  r.get("/nodes", auth, (ctx) => {
    const store = storeOr503(ctx, v);
    if (store) render(ctx, v, "nodes", "Nodes", nodesPage(store, v.collector()?.nodes() ?? []));
  });

  r.get("/nodes/:id", auth, async (ctx) => {
    const store = storeOr503(ctx, v);
    if (!store) return;
    const n = v.collector()?.node(ctx.params.id!);
    if (!n) return notFound(ctx, v, `No node ${ctx.params.id}.`);
    const history = await fetchNodeHistory(v.http, n);
    const charts = chartsSection(history, METRICS.map((m) => ({ path: nodeChartsPath(n, m), svg: nodeChart(n, history, m) })), "node's capacity");
    render(ctx, v, "node", `Node ${n.id}`, nodePage(store, n, { charts, actions: actionButtons(v, sessionCaller(tokens, ctx), "node", n.id), reservations: nodeReservationSection(store, n, v.primary()?.reservations) }));
  });

  r.get("/jobs", auth, (ctx) => {
    const store = storeOr503(ctx, v);
    if (!store) return;
    const status = oneOf(ctx.query.status, JOB_STATUSES);
    const type = oneOf(ctx.query.type, JOB_TYPES);
    render(ctx, v, "jobs", "Jobs", jobsPage(store, { ...(status ? { status } : {}), ...(type ? { type } : {}) }));
  });

  r.get("/jobs/:id", auth, (ctx) => {
    const store = storeOr503(ctx, v);
    if (!store) return;
    const job = store.jobs.get(ctx.params.id!);
    if (!job) return notFound(ctx, v, `No job ${ctx.params.id}.`);
    const primary = v.primary();
    const extras = { window: windowQuery(ctx.query), actions: actionButtons(v, sessionCaller(tokens, ctx), "job", job.id) };
    render(ctx, v, "job", `Job ${job.id}`, jobPage(job, store.tasksOf(job.id), (taskId) => primary?.pendingMetrics(taskId), primary?.smallestChange(job.id), extras));
  });

  r.get("/tasks/:jobId/:index", auth, async (ctx) => {
    const store = storeOr503(ctx, v);
    if (!store) return;
    const job = store.jobs.get(ctx.params.jobId!);
    const index = Number(ctx.params.index);
    const t = job && Number.isInteger(index) ? store.task(job.id, index) : undefined;
    if (!job || !t) return notFound(ctx, v, `No task ${ctx.params.jobId}/${ctx.params.index}.`);
    const node = t.nodeId ? v.collector()?.node(t.nodeId) : undefined;
    const [usage, history] = await Promise.all([fetchUsage(v.http, node, t), fetchTaskHistory(v.http, node, t)]);
    const charts = chartsSection(history, METRICS.map((m) => ({ path: taskChartsPath(t, m), svg: taskChart(job, t, history, m) })), "task's request");
    render(ctx, v, "task", `Task ${t.id}`, taskPage(job, t, usage, ctx.query.stream === "stderr" ? "stderr" : "stdout", charts, actionButtons(v, sessionCaller(tokens, ctx), "task", t.id), typeof ctx.query.member === "string" ? ctx.query.member : undefined, taskReservationCard(job, t, v.primary()?.reservations)));
  });

  // One chart alone, as SVG: the task and node pages re-fetch these every report interval.
  const sendSvg = (ctx: Context, svg: string) => {
    ctx.type = "image/svg+xml; charset=utf-8";
    ctx.set("Cache-Control", "no-store");
    ctx.set("X-Content-Type-Options", "nosniff");
    ctx.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
    ctx.body = svg;
  };
  const metricOf = (s: string | undefined): Metric | undefined => METRICS.find((m) => m === s);

  r.get("/charts/tasks/:jobId/:index/:metric", auth, async (ctx) => {
    const store = storeOr503(ctx, v);
    if (!store) return;
    const job = store.jobs.get(ctx.params.jobId!);
    const index = Number(ctx.params.index);
    const t = job && Number.isInteger(index) ? store.task(job.id, index) : undefined;
    const metric = metricOf(ctx.params.metric);
    if (!job || !t || !metric) return notFound(ctx, v, `No chart ${ctx.params.metric} of task ${ctx.params.jobId}/${ctx.params.index}.`);
    sendSvg(ctx, taskChart(job, t, await fetchTaskHistory(v.http, t.nodeId ? v.collector()?.node(t.nodeId) : undefined, t), metric));
  });

  r.get("/charts/nodes/:id/:metric", auth, async (ctx) => {
    const store = storeOr503(ctx, v);
    if (!store) return;
    const n = v.collector()?.node(ctx.params.id!);
    const metric = metricOf(ctx.params.metric);
    if (!n || !metric) return notFound(ctx, v, `No chart ${ctx.params.metric} of node ${ctx.params.id}.`);
    sendSvg(ctx, nodeChart(n, await fetchNodeHistory(v.http, n), metric));
  });

  registerActionRoutes(r, v, tokens, auth, (ctx, title, body, status) => render(ctx, v, "action", title, body, status));

  for (const p of REMOTE_PAGES) {
    r.get(`/${p.kind}`, auth, (ctx) => render(ctx, v, p.kind, p.title, remotePage(p)));
  }
  return r;
}
