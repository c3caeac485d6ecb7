import type { Context } from "koa";
import { esc } from "./html.js";
import { PAGE_CSS } from "./style.js";

/** The opening of every status page (manager and agent): doctype, phone viewport, title and the shared stylesheet. */
export function documentHead(title: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · Torca</title><style>${PAGE_CSS}</style></head>`;
}

/**
 * Content-Security-Policy of every page: only our own script runs, so even a
 * missed escape could not execute injected markup. Styles stay inline.
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** Answers with a status page: HTML under the pages' CSP, never cached, not sniffed, no cross-site referrer. */
export function sendPage(ctx: Context, status: number, html: string): void {
  ctx.status = status;
  ctx.type = "html";
  ctx.set("Content-Security-Policy", PAGE_CSP);
  ctx.set("Cache-Control", "no-store");
  ctx.set("X-Content-Type-Options", "nosniff");
  ctx.set("Referrer-Policy", "same-origin");
  ctx.body = html;
}
