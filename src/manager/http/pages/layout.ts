import type { ManagerView } from "../api.js";
import { esc, safeHref } from "../../../http/pages/html.js";
import { documentHead } from "../../../http/pages/document.js";

/** Path of the pages' one client script (static, served without a session). */
export const CLIENT_SCRIPT_PATH = "/_pages/client.js";

export type PageKind = "overview" | "nodes" | "node" | "jobs" | "job" | "task" | "workflows" | "workflow" | "history" | "names" | "packages" | "alerts" | "login" | "unavailable" | "action";

export interface PageOptions {
  kind: PageKind;
  title: string;
  body: string;
  /** The request path, for the backup banner's link to the same page on the primary. */
  path: string;
  /** Attributes for <body> (already escaped), e.g. data-job for live updates. */
  bodyAttrs?: string;
}

const NAV: [string, string][] = [
  ["/", "Overview"],
  ["/nodes", "Nodes"],
  ["/jobs", "Jobs"],
  ["/workflows", "Workflows"],
  ["/history", "History"],
  ["/names", "Names"],
  ["/packages", "Packages"],
  ["/alerts", "Alerts"],
];

/** The banner a backup manager shows: who the primary is, with a link to this page there. */
export function backupBanner(v: ManagerView, path: string): string {
  if (v.primary()?.isActive) return "";
  const l = v.leader();
  if (!l) return `<div class="banner" role="status">This is manager ${esc(v.id)}, a backup; no primary is elected right now.</div>`;
  if (l.id === v.id) return `<div class="banner" role="status">This manager (${esc(v.id)}) was elected and is taking over as primary.</div>`;
  const href = l.url.replace(/\/$/, "") + path;
  return `<div class="banner" role="status">This is manager ${esc(v.id)}, a read-only backup. The primary is <a href="${safeHref(href)}">${esc(l.id)}</a> (${esc(l.url)}, epoch ${esc(l.epoch)}).</div>`;
}

export function page(v: ManagerView, o: PageOptions): string {
  const role = v.primary()?.isActive ? "primary" : "backup";
  const nav = NAV.map(([href, label]) => `<a href="${href}">${label}</a>`).join("");
  return `${documentHead(o.title)}
<body data-page="${o.kind}"${o.bodyAttrs ? ` ${o.bodyAttrs}` : ""}>
<header><span class="brand">Torca</span>${nav}<span class="me">${esc(v.id)} · ${role} · <span class="live" id="live">static</span>
<form method="post" action="/logout"><button type="submit">Log out</button></form></span></header>
${backupBanner(v, o.path)}<main>${o.body}</main>
<script src="${CLIENT_SCRIPT_PATH}" defer></script></body></html>`;
}

/** The login form; the token file location is where `torca up` writes it. */
export function loginPage(next: string, error?: string): string {
  return `${documentHead("Log in")}
<body data-page="login"><header><span class="brand">Torca</span></header><main>
<form class="login" method="post" action="/login"><h1>Log in</h1>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ""}
<p class="muted">The status pages show cluster state and need a token with at least the read role.</p>
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required placeholder="contents of <cell dir>/token (torca up prints where)">
<input type="hidden" name="next" value="${esc(next)}">
<button type="submit">Log in</button></form></main></body></html>`;
}
