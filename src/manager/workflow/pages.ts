import Router from "@koa/router";
import type { Context } from "koa";
import type { TokenTable } from "../../common/auth.js";
import { jobIdOf } from "../../common/types.js";
import { sendPage } from "../../http/pages/document.js";
import { badge, esc, fmtTime, jsonForScript, seg, table } from "../../http/pages/html.js";
import type { ManagerView } from "../http/api.js";
import { loginPage, page } from "../http/pages/layout.js";
import { pageAuth, urlWithoutToken } from "../http/pages/session.js";
import { layersOf } from "./graph.js";
import { workflowDetail, workflowSummary, type WorkflowRouteDeps } from "./routes.js";
import { workflowIdOf, type NodeStateName, type WorkflowRecord } from "./types.js";

const BOX = { w: 150, h: 46, gapX: 70, gapY: 22, pad: 12 };

/** Fill per node state (the badges' palette). */
const FILL: Record<NodeStateName, string> = {
  waiting: "#eef0f3",
  pre: "#fff1c2",
  running: "#cfe3ff",
  post: "#fff1c2",
  succeeded: "#d4f1dc",
  failed: "#fbd5d3",
  skipped: "#e4e4e4",
  killed: "#f3c7c4",
};

/**
 * The workflow as an SVG: nodes in layers from left to right (a node's layer
 * is one more than its deepest parent's), each coloured by its state, with an
 * edge from every parent. Drawn on the server, so the page needs no graph
 * library; every name goes through `esc`.
 */
export function workflowSvg(r: WorkflowRecord): string {
  const layers = layersOf(r.def.nodes);
  const rows = new Map<number, number>();
  const at = new Map<string, { x: number; y: number }>();
  for (const n of r.def.nodes) {
    const layer = layers.get(n.name)!;
    const row = rows.get(layer) ?? 0;
    rows.set(layer, row + 1);
    at.set(n.name, { x: BOX.pad + layer * (BOX.w + BOX.gapX), y: BOX.pad + row * (BOX.h + BOX.gapY) });
  }
  const width = BOX.pad * 2 + (Math.max(0, ...layers.values()) + 1) * (BOX.w + BOX.gapX) - BOX.gapX;
  const height = BOX.pad * 2 + Math.max(1, ...rows.values()) * (BOX.h + BOX.gapY) - BOX.gapY;
  const edges = r.def.nodes.flatMap((n) =>
    n.after.map((p) => {
      const a = at.get(p)!;
      const b = at.get(n.name)!;
      const x1 = a.x + BOX.w;
      const y1 = a.y + BOX.h / 2;
      const x2 = b.x - 4;
      const y2 = b.y + BOX.h / 2;
      const mid = (x1 + x2) / 2;
      return `<path class="edge" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}" fill="none" stroke="#8a94a6" stroke-width="1.5" marker-end="url(#arrow)"${n.when !== "ok" ? ` stroke-dasharray="5 3"` : ""}/>`;
    }),
  );
  const boxes = r.def.nodes.map((n) => {
    const p = at.get(n.name)!;
    const s = r.nodes[n.name];
    const state = s?.state ?? "waiting";
    const detail = `${state}${s && s.attempt > 1 ? ` · attempt ${s.attempt}` : ""}`;
    const title = `${n.name}: ${state}${s?.reason ? ` (${s.reason})` : ""}`;
    return `<g class="wf-node" data-node="${esc(n.name)}" data-state="${esc(state)}"><title>${esc(title)}</title>
<rect x="${p.x}" y="${p.y}" width="${BOX.w}" height="${BOX.h}" rx="6" fill="${FILL[state]}" stroke="#56607a"/>
<text x="${p.x + 10}" y="${p.y + 19}" font-size="13" font-weight="600">${esc(n.name.length > 20 ? n.name.slice(0, 19) + "…" : n.name)}</text>
<text x="${p.x + 10}" y="${p.y + 36}" font-size="11" fill="#333">${esc(detail)}</text></g>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" id="workflow-graph" role="img" aria-label="${esc(`workflow ${r.def.name}`)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a94a6"/></marker></defs>
${edges.join("\n")}
${boxes.join("\n")}</svg>`;
}

/** The part of the page that follows the workflow live (the client script swaps it in from /workflows/:id/live). */
export function workflowLive(r: WorkflowRecord): string {
  const d = workflowDetail(r);
  const rows = d.nodeList.map(
    (n) =>
      `<tr data-node="${esc(n.name)}"><td>${esc(n.name)}</td><td>${badge(n.state)}</td><td>${esc(n.attempts)}</td><td>${n.job ? `<a href="/jobs/${esc(seg(n.job))}">${esc(n.job)}</a>` : ""}</td><td>${esc(n.after.join(", "))}${n.when !== "ok" ? ` <span class="muted">(when: ${esc(n.when)})</span>` : ""}</td><td class="wrap">${esc(n.reason ?? "")}</td></tr>`,
  );
  return `<div id="workflow-live" data-state="${esc(r.state)}"><p>State ${badge(r.state)}${r.desired === "stop" && r.state === "running" ? " (killing)" : ""} · submitted ${esc(fmtTime(r.submittedAt))}${r.finishedAt ? ` · finished ${esc(fmtTime(r.finishedAt))}` : ""}${r.resumes ? ` · resumed ${esc(r.resumes)}×` : ""}</p>
<div class="scroll">${workflowSvg(r)}</div>
${table(["Node", "State", "Attempts", "Job", "After", "Reason"], rows, ` id="workflow-nodes"`)}</div>`;
}

function workflowPage(r: WorkflowRecord): string {
  const id = workflowIdOf(r.def.namespace, r.def.name);
  return `<h1>Workflow ${esc(id)}</h1>${workflowLive(r)}
<h2>Workflow file as submitted</h2><pre>${esc(r.source)}</pre>
<script type="application/json" id="torca-state">${jsonForScript({ workflow: id, jobPrefix: jobIdOf(r.def.namespace, `${r.def.name}.`) })}</script>`;
}

function workflowsPage(all: WorkflowRecord[]): string {
  const rows = all.map((r) => {
    const s = workflowSummary(r);
    return `<tr><td><a href="/workflows/${esc(seg(s.id))}">${esc(s.id)}</a></td><td>${badge(s.state)}</td><td>${esc(Object.entries(s.nodes).map(([k, n]) => `${k} ${n}`).join(" · "))}</td><td>${esc(fmtTime(s.submittedAt))}</td><td>${esc(fmtTime(s.finishedAt))}</td></tr>`;
  });
  return `<h1>Workflows (${all.length})</h1>${all.length ? table(["Workflow", "State", "Nodes", "Submitted", "Finished"], rows) : `<p class="muted">No workflows. Submit one with <code>torca workflow submit FILE</code>.</p>`}`;
}

/** The workflow pages: the list, one workflow drawn as a graph, and the live fragment its page reloads. */
export function workflowPagesRouter(d: WorkflowRouteDeps, tokens: TokenTable): Router {
  const r = new Router();
  const v: ManagerView = d.view;
  const auth = pageAuth({ tokens, loginForm: (ctx: Context, error?: string) => sendPage(ctx, 401, loginPage(urlWithoutToken(ctx), error)) });
  const unavailable = (ctx: Context) => sendPage(ctx, 503, page(v, { kind: "unavailable", title: "Joining", body: `<h1>Joining the cluster</h1><p>ZooKeeper is ${esc(v.zookeeperState())}. Reload in a moment.</p>`, path: ctx.path }));
  const notFound = (ctx: Context, id: string) => sendPage(ctx, 404, page(v, { kind: "unavailable", title: "Not found", body: `<h1>Not found</h1><p>No workflow ${esc(id)}.</p>`, path: ctx.path }));

  r.get("/workflows", auth, async (ctx) => {
    const store = d.store();
    if (!store) return unavailable(ctx);
    const all = (await store.list()).map((s) => s.record).sort((a, b) => b.submittedAt - a.submittedAt);
    sendPage(ctx, 200, page(v, { kind: "workflows", title: "Workflows", body: workflowsPage(all), path: ctx.path }));
  });

  r.get("/workflows/:id", auth, async (ctx) => {
    const store = d.store();
    if (!store) return unavailable(ctx);
    const stored = await store.get(ctx.params.id!);
    if (!stored) return notFound(ctx, ctx.params.id!);
    sendPage(ctx, 200, page(v, { kind: "workflow", title: `Workflow ${ctx.params.id!}`, body: workflowPage(stored.record), path: ctx.path }));
  });

  r.get("/workflows/:id/live", auth, async (ctx) => {
    const stored = await d.store()?.get(ctx.params.id!);
    if (!stored) return notFound(ctx, ctx.params.id!);
    sendPage(ctx, 200, workflowLive(stored.record));
  });

  return r;
}
