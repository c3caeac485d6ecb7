import { esc } from "../../../http/pages/html.js";

/**
 * Names, packages and alerts come from API routes that other parts of the
 * manager provide (and that may be absent). The pages render a shell and the
 * client script fetches the route with the session cookie and fills in a
 * table using textContent only; a 404 shows "<what> not available".
 */
export interface RemoteListPage {
  kind: "names" | "packages" | "alerts";
  title: string;
  api: string;
  /** The array property of the response, e.g. `packages` in {packages: [...]}. */
  listKey: string;
  unavailable: string;
  empty: string;
  intro: string;
}

export const REMOTE_PAGES: readonly RemoteListPage[] = [
  { kind: "names", title: "Names", api: "/v1/names", listKey: "names", unavailable: "naming not available", empty: "No names are registered.", intro: "Service names and their endpoints (tasks that run and pass their health checks)." },
  { kind: "packages", title: "Packages", api: "/v1/packages", listKey: "packages", unavailable: "packages not available", empty: "Shared storage holds no packages.", intro: "Packages in shared storage (push with torca push DIR --name N --version V)." },
  { kind: "alerts", title: "Alerts", api: "/v1/alerts", listKey: "alerts", unavailable: "alerts not available", empty: "No alerts have been sent.", intro: "Alerts and their deliveries, newest first." },
];

export function remotePage(p: RemoteListPage): string {
  return `<h1>${esc(p.title)}</h1><p class="muted">${esc(p.intro)}</p>
<div id="remote" data-api="${esc(p.api)}" data-list="${esc(p.listKey)}" data-unavailable="${esc(p.unavailable)}" data-empty="${esc(p.empty)}"><p class="muted">loading…</p></div>`;
}
