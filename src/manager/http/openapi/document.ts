import type { ZodTypeAny } from "zod";
import { zodToJsonSchema } from "zod-to-json-schema";
import { SESSION_COOKIE } from "../../../http/auth.js";
import { ErrorEnvelopeSchema } from "../../../common/schemas/api.js";
import type { Access, Answer, Operation } from "./operations.js";

type JsonObject = Record<string, unknown>;

/** A zod schema as OpenAPI 3.0 wants it: inlined, without `$schema`; transforms are described by what they accept. */
export function jsonSchemaOf(schema: ZodTypeAny): JsonObject {
  const { $schema: _dialect, ...rest } = zodToJsonSchema(schema, { target: "openApi3", $refStrategy: "none", effectStrategy: "input" }) as JsonObject;
  return rest;
}

/** `/v1/jobs/:id` → `/v1/jobs/{id}`. */
export function openApiPath(pattern: string): string {
  return pattern.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, "{$1}");
}

function pathParameters(pattern: string): JsonObject[] {
  return [...pattern.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
}

function security(access: Access): JsonObject[] {
  if (access === "public") return [];
  if (access === "page") return [{ bearer: [] }, { session: [] }];
  return [{ bearer: [] }];
}

function response(a: Answer): JsonObject {
  if (!a.schema && !a.contentType) return { description: a.description };
  const schema = a.schema ? jsonSchemaOf(a.schema) : { type: "string", format: "binary" };
  return { description: a.description, content: { [a.contentType ?? "application/json"]: { schema } } };
}

function operation(op: Operation): JsonObject {
  const parameters = [...pathParameters(op.path), ...Object.entries(op.query ?? {}).map(([name, q]) => ({ name, in: "query", required: false, description: q.description, schema: jsonSchemaOf(q.schema) }))];
  const responses: JsonObject = Object.fromEntries(op.answers.map((a) => [String(a.status), response(a)]));
  responses.default = { description: "an error (src/http/edge.ts): 400 bad input, 401/403 token, 404, 307 to the primary, 503 while joining", content: { "application/json": { schema: jsonSchemaOf(ErrorEnvelopeSchema) } } };
  return {
    operationId: `${op.method}${openApiPath(op.path).replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ""))}`,
    summary: op.summary,
    tags: [op.tag],
    "x-torca-access": op.access,
    security: security(op.access),
    ...(parameters.length ? { parameters } : {}),
    ...(op.body ? { requestBody: { required: true, content: { [op.body.contentType]: { schema: op.body.schema ? jsonSchemaOf(op.body.schema) : op.body.jsonSchema } } } } : {}),
    responses,
  };
}

/** The OpenAPI 3 document of `operations`. */
export function openApiDocument(operations: readonly Operation[]): JsonObject {
  const paths: Record<string, JsonObject> = {};
  for (const op of operations) (paths[openApiPath(op.path)] ??= {})[op.method] = operation(op);
  return {
    openapi: "3.0.3",
    info: { title: "Torca Central Manager API", version: "v1", description: "Every route a Torca manager serves (docs/api.md). Tokens go in `Authorization: Bearer`; writes go to the primary (a backup answers 307 to it)." },
    tags: [...new Set(operations.map((o) => o.tag))].map((name) => ({ name })),
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "a cell token (read, submit, admin) or a namespaced token" },
        session: { type: "apiKey", in: "cookie", name: SESSION_COOKIE, description: "the pages' session, opened by POST /login" },
      },
    },
    paths,
  };
}
