import Router from "@koa/router";
import { formatBytes } from "../../common/units.js";
import type { ManagerView } from "./api.js";

/** Escapes text for HTML element content and attribute values. */
export function esc(s: unknown): string {
  return String(s ?? "").replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(v: ManagerView, title: string, body: string): string {
  const l = v.leader();
  const banner = v.primary()?.isActive ? "" : `<div class="banner">Backup manager ${esc(v.id)}; the primary is ${l ? `<a href="${esc(l.url)}">${esc(l.id)}</a>` : "not elected"}.</div>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · Torca</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}header{background:#1d3557;color:#fff;padding:.6em 1em}header a{color:#fff;margin-right:1em}
main{padding:1em;max-width:1100px}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left}
.banner{background:#ffe8a3;padding:.5em 1em}</style></head>
<body><header><strong>Torca</strong> · <a href="/">Overview</a></header>${banner}<main>${body}</main></body></html>`;
}

/** Server-rendered status pages; every piece of user data goes through `esc`. */
export function pagesRouter(v: ManagerView): Router {
  const r = new Router();
  r.get("/", (ctx) => {
    const store = v.store();
    const nodes = v.collector()?.nodes() ?? [];
    const jobs = store ? [...store.jobs.values()].sort((a, b) => b.submittedAt - a.submittedAt) : [];
    const l = v.leader();
    const body = `<h1>Cell overview</h1>
<p>Primary: ${l ? `${esc(l.id)} (epoch ${esc(l.epoch)})` : "none"} · ZooKeeper: ${esc(v.zookeeperState())}</p>
<h2>Nodes (${nodes.length})</h2><table><thead><tr><th>Node</th><th>State</th><th>CPU</th><th>Memory</th></tr></thead><tbody>
${nodes.map((n) => `<tr><td>${esc(n.id)}</td><td>${esc(n.state)}</td><td>${esc(n.allocatable.cpu)}</td><td>${esc(formatBytes(n.allocatable.memory))}</td></tr>`).join("")}
</tbody></table>
<h2>Jobs (${jobs.length})</h2><table><thead><tr><th>Job</th><th>Type</th><th>Status</th><th>Instances</th></tr></thead><tbody>
${jobs.map((j) => `<tr><td>${esc(j.id)}</td><td>${esc(j.spec.type)}</td><td>${esc(j.status)}</td><td>${esc(j.spec.instances)}</td></tr>`).join("")}
</tbody></table>`;
    ctx.type = "html";
    ctx.body = layout(v, "Overview", body);
  });
  return r;
}
