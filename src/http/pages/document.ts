import { esc } from "./html.js";
import { PAGE_CSS } from "./style.js";

/** The opening of every status page (manager and agent): doctype, phone viewport, title and the shared stylesheet. */
export function documentHead(title: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · Torca</title><style>${PAGE_CSS}</style></head>`;
}
