import Router from "@koa/router";
import { openApiDocument } from "./document.js";
import { OPERATIONS } from "./operations.js";

/** `GET /v1/openapi.json`: public, as it describes only what docs/api.md does. */
export function openApiRouter(): Router {
  const r = new Router();
  let document: string | undefined;
  r.get("/v1/openapi.json", (ctx) => {
    document ??= JSON.stringify(openApiDocument(OPERATIONS));
    ctx.type = "application/json";
    ctx.body = document;
  });
  return r;
}
