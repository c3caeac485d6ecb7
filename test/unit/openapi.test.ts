/**
 * The OpenAPI document against what the manager serves: every route on the
 * manager's routers (their own stacks, from the application it listens with)
 * is described, nothing described is missing from them, and the document is
 * what GET /v1/openapi.json answers.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Koa from "koa";
import type Router from "@koa/router";
import { loadConfig } from "../../src/common/config.js";
import { ManagerDaemon } from "../../src/manager/manager.js";
import { openApiDocument, openApiPath } from "../../src/manager/http/openapi/document.js";
import { OPERATIONS } from "../../src/manager/http/openapi/operations.js";
import type { UpgradeRoute } from "../../src/http/upgrade.js";

/** "METHOD /pattern" of every route of the routers mounted on `app` (HEAD is implied by GET), and of the HTTP upgrades served beside it (POST). */
function servedRoutes(app: Koa, upgrades: readonly UpgradeRoute[]): string[] {
  // @koa/router marks the middleware of router.routes() with its router.
  const routers = app.middleware.flatMap((m) => (m as unknown as { router?: Router }).router ?? []);
  return [...routers.flatMap((r) => r.stack.flatMap((layer) => layer.methods.filter((m) => m !== "HEAD").map((m) => `${m} ${String(layer.path)}`))), ...upgrades.map((u) => `POST ${u.pattern}`)];
}

describe("the OpenAPI document", () => {
  const dir = mkdtempSync(join(tmpdir(), "torca-openapi-"));
  let manager: ManagerDaemon;
  let app: Koa;
  let upgrades: UpgradeRoute[];
  const documented = new Set(OPERATIONS.map((o) => `${o.method.toUpperCase()} ${o.path}`));

  before(() => {
    writeFileSync(join(dir, "token"), "openapi-test-token-0123456789abcdef\n", { mode: 0o600 });
    writeFileSync(join(dir, "torca.yaml"), `cluster:\n  tokenFile: ${join(dir, "token")}\nmanager:\n  storageDir: ${join(dir, "store")}\n`);
    manager = new ManagerDaemon(loadConfig(join(dir, "torca.yaml"), {}).config);
    app = manager.buildApp();
    upgrades = manager.upgradeRoutes();
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test("describes every route the manager's routers serve", () => {
    const served = servedRoutes(app, upgrades);
    assert.ok(served.length >= 40, `found only ${served.length} routes: is every router mounted with .routes()?`);
    const missing = served.filter((r) => !documented.has(r));
    assert.deepEqual(
      missing,
      [],
      `served but missing from the OpenAPI document: ${missing.join(", ")}. Describe each in src/manager/http/openapi/operations.ts (its request schema, query parameters, role and zod answer schemas in src/common/schemas/api.ts).`,
    );
  });

  test("describes nothing the manager does not serve", () => {
    const served = new Set(servedRoutes(app, upgrades));
    const stale = [...documented].filter((r) => !served.has(r));
    assert.deepEqual(stale, [], `described in src/manager/http/openapi/operations.ts but not served: ${stale.join(", ")}`);
  });

  test("each operation once, with an id, answers and the error envelope", () => {
    assert.equal(documented.size, OPERATIONS.length, "no route described twice");
    const doc = openApiDocument(OPERATIONS) as { openapi: string; paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown>; parameters?: { name: string; in: string }[] }>> };
    assert.equal(doc.openapi, "3.0.3");
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
    assert.equal(new Set(ids).size, ids.length, "operationIds are unique");
    const job = doc.paths[openApiPath("/v1/jobs/:id")]!.get!;
    assert.deepEqual(job.parameters?.map((p) => `${p.in}:${p.name}`), ["path:id"]);
    assert.ok(job.responses["200"] && job.responses.default, "the job's answer and the error envelope");
  });

  test("the request schemas are the routes' own zod schemas, converted", () => {
    const doc = openApiDocument(OPERATIONS) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown>; additionalProperties?: boolean } }> } }>> };
    const token = doc.paths["/v1/tokens"]!.post!.requestBody!.content["application/json"]!.schema;
    assert.deepEqual(Object.keys(token.properties ?? {}).sort(), ["name", "namespaces", "role", "ttl"]);
    assert.equal(token.additionalProperties, false, "strict, as the route checks it");
    const submit = doc.paths["/v1/jobs"]!.post!.requestBody!.content["application/json"]!.schema;
    assert.ok(submit.properties && "command" in submit.properties && "restart" in submit.properties, "the task file's keys");
  });

  test("GET /v1/openapi.json answers the document, without a token", async () => {
    const server: Server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/openapi.json`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /application\/json/);
      assert.deepEqual(await res.json(), JSON.parse(JSON.stringify(openApiDocument(OPERATIONS))));
    } finally {
      server.close();
    }
  });
});
