import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import Koa from "koa";
import {
  ConfigError,
  ConflictError,
  CoordinationError,
  DriverError,
  ERROR_CLASSES,
  ForbiddenError,
  IntegrityError,
  InternalError,
  MethodNotAllowedError,
  NotFoundError,
  NotPrimaryError,
  PayloadTooLargeError,
  StaleEpochError,
  TorcaError,
  UnauthorizedError,
  UnavailableError,
  UnplaceableError,
  UnsafeArchiveError,
  ValidationError,
  IdempotencyKeyReusedError,
  type ErrorCode,
} from "../../src/common/errors.js";
import { createHttpClient, httpErrorToTorca } from "../../src/common/http.js";
import { createLogger } from "../../src/common/logger.js";
import { errorEnvelope } from "../../src/http/edge.js";

/** One error of every code, as a server would throw it. */
const THROWN: Record<ErrorCode, () => TorcaError> = {
  invalid_input: () => new ValidationError([{ field: "resources.memory", message: "must be a size", line: 4, column: 3 }], "web.yaml"),
  invalid_config: () => new ConfigError("manager.listen: must be host:port", "manager.listen"),
  unauthorized: () => new UnauthorizedError(),
  forbidden: () => new ForbiddenError("token reader has role read; this needs submit"),
  not_found: () => new NotFoundError("job", "web"),
  method_not_allowed: () => new MethodNotAllowedError("PATCH", "/v1/jobs", "GET, POST"),
  conflict: () => new ConflictError("job web exists with another spec", { field: "id" }),
  not_primary: () => new NotPrimaryError(undefined),
  stale_epoch: () => new StaleEpochError(3, 4),
  unplaceable: () => new UnplaceableError("no node has 64 cores"),
  payload_too_large: () => new PayloadTooLargeError(1024),
  unavailable: () => new UnavailableError("zookeeper is not reachable"),
  coordination: () => new CoordinationError("create", "/torca/jobs/web", -110, "node exists"),
  integrity: () => new IntegrityError("digest mismatch"),
  unsafe_archive: () => new UnsafeArchiveError("entry escapes the root", "../etc/passwd"),
  idempotency_key_reused: () => new IdempotencyKeyReusedError("4f1c-retry"),
  driver: () => new DriverError("lxc-start failed"),
  internal: () => new InternalError("scheduler: duplicate node id"),
};

/** What the HTTP edge logged, one parsed JSON line per entry. */
const logged: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) logged.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

let server: Server;
let base: string;

before(async () => {
  const app = new Koa();
  app.use(errorEnvelope(createLogger("edge-test", {}, { destination: sink, level: "error" })));
  app.use((ctx) => {
    const code = ctx.path.slice(1);
    if (code === "plain") throw new Error("disk on fire");
    if (code === "two-issues") throw new ValidationError([{ field: "name", message: "is required" }, { field: "tasks.0.cpu", message: "must be a number", line: 9 }]);
    if (Object.hasOwn(THROWN, code)) throw THROWN[code as ErrorCode]();
    // Anything else is left unanswered: the edge's own 404.
  });
  server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** GETs `path` through the one client wrapper and returns the error it is turned into. */
async function caught(path: string): Promise<TorcaError> {
  const http = createHttpClient({ retries: 0, followRedirect: false });
  try {
    await http.get(`${base}${path}`);
  } catch (e) {
    return httpErrorToTorca(e, `GET ${path}`);
  }
  throw new Error(`GET ${path} succeeded`);
}

describe("errors keep their class across the wire", () => {
  test("every code has a sample here and a class in the registry", () => {
    assert.deepEqual(Object.keys(THROWN).sort(), Object.keys(ERROR_CLASSES).sort());
  });

  for (const [code, make] of Object.entries(THROWN) as [ErrorCode, () => TorcaError][]) {
    test(`${code}: the client catches the class the server threw, with its code, message, status and field`, async () => {
      const thrown = make();
      const got = await caught(`/${code}`);
      assert.ok(got instanceof thrown.constructor, `${got.name} is not a ${thrown.name}`);
      assert.ok(got instanceof TorcaError);
      assert.equal(got.name, thrown.name);
      assert.equal(got.code, thrown.code);
      assert.equal(got.message, thrown.message);
      assert.equal(got.status, thrown.status);
      assert.equal(got.exitCode, thrown.exitCode);
      assert.equal(got.field, thrown.field);
      assert.equal(got.context.line, thrown.context.line);
      assert.equal(got.context.column, thrown.context.column);
      assert.equal(got.context.url, `${base}/${code}`);
    });
  }

  test("a ValidationError keeps its line, column and issues", async () => {
    const got = await caught("/invalid_input");
    assert.ok(got instanceof ValidationError);
    assert.equal(got.context.line, 4);
    assert.equal(got.context.column, 3);
    assert.equal(got.issues.length, 1);
    assert.equal(got.issues[0]!.field, "resources.memory");
  });

  test("a ValidationError with several issues brings every one back", async () => {
    const got = await caught("/two-issues");
    assert.ok(got instanceof ValidationError);
    assert.deepEqual(
      got.issues.map((i) => [i.field, i.message, i.line]),
      [
        ["name", "is required", undefined],
        ["tasks.0.cpu", "must be a number", 9],
      ],
    );
  });

  test("a StaleEpochError is caught by instanceof, so callers need no code check", async () => {
    const got = await caught("/stale_epoch");
    assert.ok(got instanceof StaleEpochError);
    assert.equal(got.status, 409);
  });
});

describe("the HTTP edge", () => {
  test("a plain Error is a 500 internal envelope without the stack, and the log has the stack", async () => {
    logged.length = 0;
    const http = createHttpClient({ retries: 0 });
    const res = await http.get(`${base}/plain`, { throwHttpErrors: false });
    assert.equal(res.statusCode, 500);
    assert.deepEqual(JSON.parse(res.body), { error: { code: "internal", message: "disk on fire" } });
    assert.doesNotMatch(res.body, /at .*errors\.test/);
    const entry = logged.find((l) => l.msg === "request failed");
    assert.ok(entry, "the 500 was logged");
    const err = entry.err as { type: string; message: string; stack: string };
    assert.equal(err.type, "Error");
    assert.equal(err.message, "disk on fire");
    assert.match(err.stack, /errors\.test\.[jt]s/);
  });

  test("a 4xx is answered with the envelope and not logged", async () => {
    logged.length = 0;
    const got = await caught("/not_found");
    assert.ok(got instanceof NotFoundError);
    assert.equal(logged.length, 0);
  });

  test("an unknown route is a not_found envelope", async () => {
    const got = await caught("/no/such/route");
    assert.ok(got instanceof NotFoundError);
    assert.equal(got.message, 'endpoint "GET /no/such/route" not found');
  });

  test("a response without the envelope gets a code from its status", async () => {
    const bare = createServer((_req, res) => {
      res.statusCode = 502;
      res.end("bad gateway");
    });
    await new Promise<void>((resolve) => bare.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/x`;
      const e = await createHttpClient({ retries: 0 })
        .get(url)
        .then(() => undefined, (err: unknown) => httpErrorToTorca(err, "GET /x"));
      assert.ok(e instanceof UnavailableError);
      assert.equal(e.message, "GET /x: HTTP 502");
      assert.equal(e.status, 502);
    } finally {
      await new Promise<void>((resolve) => bare.close(() => resolve()));
    }
  });
});
