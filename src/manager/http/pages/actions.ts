import type Router from "@koa/router";
import type { Context, Middleware } from "koa";
import { describeCaller, hasGrant, namespaceOfJobId, seesNamespace, type Caller } from "../../../auth/grants.js";
import type { TokenTable } from "../../../common/auth.js";
import { TorcaError, UnavailableError } from "../../../common/errors.js";
import { parseTaskId } from "../../../common/types.js";
import { sessionToken } from "../../../http/auth.js";
import { readText } from "../../../http/body.js";
import { CSRF_FIELD, csrfToken, csrfValid } from "../../../http/csrf.js";
import { esc, safeHref, seg } from "../../../http/pages/html.js";
import type { ManagerView } from "../api.js";

/**
 * Admin actions on the pages: a button on the job, task or node page (shown only to
 * a session whose token may do it) leads to a confirmation page, whose form
 * POSTs to the same URL with the session's CSRF token (src/http/csrf.ts).
 * The POST checks everything again: the session, the CSRF token, the token's
 * role and namespace, and that this manager is the primary. The audit log
 * records it like an API call (method, path, token, answer's status).
 *
 * Adding an action is one entry in PAGE_ACTIONS: `kind` says which page shows
 * the button, `allowed` is the server-side check, `run` does it through the
 * primary's own operation (the same one the API route calls).
 */

export type ActionKind = "job" | "node" | "task";

export interface PageAction {
  kind: ActionKind;
  /** The URL segment: /actions/<kind>/<id>/<name>. */
  name: string;
  /** The button's text. */
  label: string;
  /** The question on the confirmation page. */
  confirm(id: string): string;
  /** May this caller do it to this target? Checked again on every POST. */
  allowed(caller: Caller, id: string): boolean;
  /** Does it make sense in the target's current state (e.g. undrain only a draining node)? */
  applies(v: ManagerView, id: string): boolean;
  /** Does it, on the primary; throws a TorcaError when refused. */
  run(v: ManagerView, id: string): Promise<void>;
}

function primaryOf(v: ManagerView) {
  const p = v.primary();
  if (!p?.isActive) throw new UnavailableError("this manager is a backup; only the primary acts (open this page on the primary)");
  return p;
}

const mayDrain = (caller: Caller) => hasGrant(caller, "admin");
const mayChangeJob = (caller: Caller, id: string) => hasGrant(caller, "submit") && seesNamespace(caller, namespaceOfJobId(id));

export const PAGE_ACTIONS: readonly PageAction[] = [
  {
    kind: "job",
    name: "kill",
    label: "Kill job",
    confirm: (id) => `Kill job ${id}? Every task of it is stopped; the job stays listed as killed.`,
    allowed: mayChangeJob,
    applies: (v, id) => v.store()?.jobs.get(id)?.desired === "run",
    run: async (v, id) => {
      await primaryOf(v).kill(id);
    },
  },
  {
    kind: "job",
    name: "restart",
    label: "Restart job",
    confirm: (id) => `Restart job ${id}? Every instance is replaced by the job's update policy (a rolling restart: new instances are published only once healthy, old ones drain first).`,
    allowed: mayChangeJob,
    applies: (v, id) => {
      const job = v.store()?.jobs.get(id);
      return job?.desired === "run" && job.spec.type === "service";
    },
    run: async (v, id) => {
      await primaryOf(v).restart(id, false);
    },
  },
  {
    kind: "job",
    name: "promote",
    label: "Promote deployment",
    confirm: (id) => `Promote the deployment of ${id}? Its canaries have been healthy; the remaining instances move to the new version.`,
    allowed: mayChangeJob,
    applies: (v, id) => v.store()?.jobs.get(id)?.deployment?.status === "awaiting-promotion",
    run: async (v, id) => {
      await primaryOf(v).deployment(id, "promote");
    },
  },
  {
    kind: "task",
    name: "restart",
    label: "Restart task",
    confirm: (id) => `Restart task ${id}? Its running attempt is stopped and the job's restart policy starts the next one (it counts as a restart).`,
    allowed: (caller, id) => hasGrant(caller, "submit") && seesNamespace(caller, namespaceOfJobId(parseTaskId(id)?.jobId ?? id)),
    applies: (v, id) => {
      const ref = parseTaskId(id);
      const t = ref ? v.store()?.task(ref.jobId, ref.index) : undefined;
      return t?.state === "running" && t.desired === "run";
    },
    run: (v, id) => primaryOf(v).restartTask(id),
  },
  {
    kind: "node",
    name: "drain",
    label: "Drain node",
    confirm: (id) => `Drain node ${id}? No new tasks are placed there and its tasks migrate to other nodes.`,
    allowed: mayDrain,
    applies: (v, id) => v.collector()?.node(id)?.state === "ready",
    run: (v, id) => primaryOf(v).drain(id, true),
  },
  {
    kind: "node",
    name: "undrain",
    label: "Undrain node",
    confirm: (id) => `Undrain node ${id}? It takes new tasks again.`,
    allowed: mayDrain,
    applies: (v, id) => v.collector()?.node(id)?.state === "draining",
    run: (v, id) => primaryOf(v).drain(id, false),
  },
];

function find(kind: string, name: string): PageAction | undefined {
  return PAGE_ACTIONS.find((a) => a.kind === kind && a.name === name);
}

export function actionPath(kind: ActionKind, id: string, name: string): string {
  return `/actions/${kind}/${seg(id)}/${name}`;
}

/** The page an action returns to (a task's page is /tasks/JOB/INDEX). */
function targetPath(kind: ActionKind, id: string): string {
  const ref = kind === "task" ? parseTaskId(id) : undefined;
  return ref ? `/tasks/${seg(ref.jobId)}/${ref.index}` : `/${kind}s/${seg(id)}`;
}

/** The caller of a page session (undefined without a valid one). */
export function sessionCaller(tokens: TokenTable, ctx: Context): Caller | undefined {
  const token = sessionToken(ctx);
  if (!token) return undefined;
  try {
    return tokens.authorize(`Bearer ${token}`, "read");
  } catch (e) {
    if (e instanceof TorcaError) return undefined;
    throw e;
  }
}

/** The buttons for a job or node page: the actions this caller may do that apply now (none on a backup). */
export function actionButtons(v: ManagerView, caller: Caller | undefined, kind: ActionKind, id: string): string {
  if (!caller || !v.primary()?.isActive) return "";
  const shown = PAGE_ACTIONS.filter((a) => a.kind === kind && a.allowed(caller, id) && a.applies(v, id));
  if (shown.length === 0) return "";
  return `<p class="actions" id="actions">${shown.map((a) => `<a class="button" data-action="${esc(a.name)}" href="${esc(actionPath(kind, id, a.name))}">${esc(a.label)}</a>`).join(" ")}</p>`;
}

export type RenderPage = (ctx: Context, title: string, body: string, status?: number) => void;

const ACTION_BODY_LIMIT = 4 * 1024;

/**
 * GET /actions/:kind/:id/:name: the confirmation page (with the form);
 * POST: does it and redirects to the target's page (303), or answers a page
 * saying why not (401, 403, 404, 409, 503).
 */
export function registerActionRoutes(r: Router, v: ManagerView, tokens: TokenTable, auth: Middleware, render: RenderPage): void {
  const refuse = (ctx: Context, status: number, message: string) => render(ctx, "Action refused", `<h1>Refused</h1><p class="error" role="alert">${esc(message)}</p>`, status);

  r.get("/actions/:kind/:id/:name", auth, (ctx) => {
    const a = find(ctx.params.kind!, ctx.params.name!);
    const id = ctx.params.id!;
    if (!a) return refuse(ctx, 404, `No action ${ctx.params.kind}/${ctx.params.name}.`);
    const caller = sessionCaller(tokens, ctx)!;
    if (!a.allowed(caller, id)) return refuse(ctx, 403, `${describeCaller(caller)} may not ${a.label.toLowerCase()} ${id}.`);
    const back = targetPath(a.kind, id);
    render(
      ctx,
      a.label,
      `<h1>${esc(a.label)}</h1><form class="confirm" method="post" action="${esc(actionPath(a.kind, id, a.name))}">
<p>${esc(a.confirm(id))}</p><input type="hidden" name="${CSRF_FIELD}" value="${esc(csrfToken(sessionToken(ctx)!))}">
<button type="submit" class="danger">${esc(a.label)}</button> <a href="${safeHref(back)}">Cancel</a></form>`,
    );
  });

  r.post("/actions/:kind/:id/:name", async (ctx) => {
    const token = sessionToken(ctx);
    let caller: Caller;
    try {
      caller = await tokens.identifyFresh(token ? `Bearer ${token}` : undefined);
    } catch (e) {
      if (e instanceof TorcaError) return refuse(ctx, 401, "Log in first: this action needs a page session.");
      throw e;
    }
    // For the audit log (src/auth/audit.ts), which names the token of refused calls too.
    ctx.state.caller = caller;
    const form = new URLSearchParams(await readText(ctx, ACTION_BODY_LIMIT));
    if (!csrfValid(token, form.get(CSRF_FIELD))) return refuse(ctx, 403, "The form's CSRF token is missing or does not match this session; reload the page and try again.");
    const a = find(ctx.params.kind!, ctx.params.name!);
    const id = ctx.params.id!;
    if (!a) return refuse(ctx, 404, `No action ${ctx.params.kind}/${ctx.params.name}.`);
    if (!a.allowed(caller, id)) return refuse(ctx, 403, `${describeCaller(caller)} may not ${a.label.toLowerCase()} ${id}.`);
    try {
      await a.run(v, id);
    } catch (e) {
      if (e instanceof TorcaError) return refuse(ctx, e.status, e.message);
      throw e;
    }
    ctx.status = 303;
    ctx.redirect(targetPath(a.kind, id));
  });
}
