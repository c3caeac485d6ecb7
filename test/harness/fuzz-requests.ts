/**
 * Malformed requests to the manager's and the agent's HTTP APIs, generated
 * from a seed like the task files (fuzz.ts), each invalid BY CONSTRUCTION so
 * that it must be refused with a 4xx: bodies that break the route's schema,
 * identifiers that name nothing, query values outside their set, missing or
 * weak tokens, routes and methods that do not exist. A request that would be
 * valid (and so change the cell) is never generated: the test checks that
 * nothing changed afterwards.
 *
 * Task-file bodies come from taskFileCase(), with the same expectations the
 * parser test checks, now read back from the JSON error envelope.
 */
import type { Expectation } from "./fuzz.js";
import { taskFileCase } from "./fuzz.js";
import { Prng } from "./prng.js";

/** What the generator must know about the cell it aims at. */
export interface FuzzTarget {
  /** Jobs that exist (never named by a request that would change them). */
  jobIds: readonly string[];
  /** A task that exists (queries against it carry at least one bad value). */
  taskId: string;
  nodeId: string;
  tokens: { admin: string; submit: string; read: string };
  /** The manager's body limit (config manager.bodyLimit) and package limit. */
  bodyLimit: number;
  packageLimit: number;
  /** The agent's body limit (agent/agent.ts). */
  agentBodyLimit: number;
}

export type Service = "manager" | "agent";

export interface ApiExpectation {
  /** Acceptable statuses (all 4xx). */
  status: readonly number[];
  /** The envelope's error code, when it is certain. */
  code?: string;
  /** An issue at this field, when it is certain. */
  field?: string;
  /** For task-file bodies: what the issues must point at, as for the parser (fuzz.ts). */
  taskFile?: { text: string; expect: Expectation; source?: string };
  /** The message must match (when neither a field nor a line can be demanded). */
  message?: RegExp;
}

export interface ApiCase {
  index: number;
  kind: string;
  detail: string;
  service: Service;
  method: string;
  /** Path and query, exactly as sent (stable under URL parsing). */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Send the body without Content-Length (chunked). */
  chunked?: boolean;
  expect: ApiExpectation;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const enc = encodeURIComponent;

const BAD_REQUEST = { status: [400], code: "invalid_input" } as const;
const NOT_FOUND = { status: [404], code: "not_found" } as const;

/** Text that is not JSON, or JSON of the wrong kind for an object body. */
const NOT_A_JSON_OBJECT: readonly string[] = ["{", "}", "{undo: true}", '{"a": tru}', "[1,", "'x'", "\u0000", "nul", "null", "[]", '"x"', "5", "true", "{}{}", '{"a":1}x'];
const INVALID_JSON: readonly string[] = ["{", "}", "{undo: true}", '{"a": tru}', "[1,", "'x'", "\u0000", "nul", "{}{}", '{"a":1}x', "\uFEFF\uFEFF{}", '{"a": "\\x"}'];

/** Identifiers that name nothing: random, near misses of real ones, odd characters. Never "." or "..", which URL parsing removes. */
function missingId(r: Prng, real: readonly string[]): string {
  for (;;) {
    const base = r.pick(real);
    const id = r.pick([
      () => r.string(r.between(1, 40), "abcdefghijklmnopqrstuvwxyz0123456789-_.:~"),
      () => base + r.pick(["x", "-", " ", "\u0000", "%", "/0", ":", "é"]),
      () => base.slice(0, -1),
      () => base.toUpperCase(),
      () => ` ${base}`,
      () => `default:${base}`,
      () => r.string(r.between(200, 2000), "ab"),
      () => r.pick(["\u202e", "𝔸", "\uFFFD", "a\nb", "a\tb", "<script>", "' OR 1=1 --", "${x}", "%s%n", "\\", "..a", "a..", "null", "undefined", "0", "-1"]),
    ])();
    if (!real.includes(id) && id !== "." && id !== ".." && id.trim() !== "") return id;
  }
}

function gzipish(r: Prng, n: number): Buffer {
  return Buffer.concat([Buffer.from([0x1f, 0x8b]), r.bytes(n)]);
}

/** Anything but the two bytes gzip starts with. */
function notGzip(r: Prng): Buffer {
  const b = r.pick([() => Buffer.from("just text, not a tarball"), () => r.bytes(r.between(1, 5000)), () => Buffer.from("PK\u0003\u0004zip"), () => Buffer.from([0x1f]), () => Buffer.from([0x8b, 0x1f])])();
  if (b[0] === 0x1f && b[1] === 0x8b) b[0] = 0x00;
  return b;
}

type Gen = (r: Prng, t: FuzzTarget) => Omit<ApiCase, "index">;

// --- manager: task files --------------------------------------------------

const YAML_TYPES = ["application/yaml", "application/x-yaml", "text/yaml", "text/plain; charset=utf-8", "application/octet-stream", "text/x-yaml; charset=latin1", ""];
const JSON_TYPES = ["application/json", "application/json; charset=utf-8", "application/vnd.torca+json"];

function taskFileRequest(path: "/v1/jobs" | "/v1/jobs/plan"): Gen {
  return (r, t) => {
    const c = taskFileCase(r.u32(), r.u32() % 1_000_000);
    const body = c.bytes ?? Buffer.from(c.text, "utf8");
    const type = c.format === "json" ? r.pick(JSON_TYPES) : r.pick(YAML_TYPES);
    const token = path === "/v1/jobs" ? r.pick([t.tokens.admin, t.tokens.submit]) : r.pick([t.tokens.admin, t.tokens.submit, t.tokens.read]);
    // Not UTF-8: refused by the strict decoder at the edge, which names a line but no source.
    const raw = c.bytes !== undefined;
    const expect: ApiExpectation =
      body.length > t.bodyLimit
        ? { status: [413], code: "payload_too_large" }
        : body.toString("utf8").replace(/^\uFEFF/, "").trim() === ""
          ? { ...BAD_REQUEST, message: /empty request body/ }
          : { ...BAD_REQUEST, taskFile: { text: c.text, expect: raw ? (c.bytesExpect ?? { line: true }) : c.expect, ...(raw ? {} : { source: "task description" }) } };
    return {
      kind: `${path === "/v1/jobs" ? "submit" : "plan"}: ${c.kind}`,
      detail: c.detail,
      service: "manager",
      method: "POST",
      path,
      headers: { ...bearer(token), ...(type ? { "content-type": type } : {}) },
      body,
      expect,
    };
  };
}

const submitEdges: Gen = (r, t) => {
  const variant = r.int(4);
  const base = { service: "manager" as const, method: "POST", path: r.pick(["/v1/jobs", "/v1/jobs/plan"]) };
  if (variant === 0) {
    const body = r.pick(["", " ", "\n\n\t", "\r\n"]);
    return { ...base, kind: "submit: empty body", detail: JSON.stringify(body), headers: { ...bearer(t.tokens.submit), "content-type": "application/yaml" }, body: Buffer.from(body), expect: BAD_REQUEST };
  }
  if (variant === 1) {
    const body = Buffer.from("name: big\ncommand: [x]\nenv:\n" + "  A: " + "x".repeat(t.bodyLimit) + "\n");
    const chunked = r.chance(0.3);
    return { ...base, kind: "submit: oversized body", detail: `${body.length} bytes${chunked ? ", chunked" : ""}`, headers: { ...bearer(t.tokens.submit), "content-type": "application/yaml" }, body, chunked, expect: { status: [413], code: "payload_too_large" } };
  }
  if (variant === 2) {
    // A valid YAML task file declared as JSON: read as JSON, and JSON it is not.
    const body = Buffer.from(`name: as-json-${r.u32()}\ntype: batch\ncommand: ["/bin/true"]\n`);
    return { ...base, kind: "submit: YAML sent as JSON", detail: "content-type application/json", headers: { ...bearer(t.tokens.submit), "content-type": "application/json" }, body, expect: BAD_REQUEST };
  }
  // Not UTF-8 anywhere a parser would look: a valid job whose command argument has a Latin-1 byte.
  const body = Buffer.concat([Buffer.from(`name: latin-${r.u32()}\ntype: batch\ncommand: ["/bin/echo", "caf`), Buffer.from([0xe9]), Buffer.from(`"]\n`)]);
  return { ...base, kind: "submit: Latin-1 byte in an argument", detail: "byte 0xe9", headers: { ...bearer(t.tokens.submit), "content-type": r.pick(YAML_TYPES.filter(Boolean)) }, body, expect: { ...BAD_REQUEST, taskFile: { text: body.toString("utf8"), expect: { line: true } } } };
};

// --- manager: identifiers and queries --------------------------------------

const jobPaths: Gen = (r, t) => {
  const id = missingId(r, t.jobIds);
  const method = r.pick(["GET", "DELETE"]);
  const raw = r.chance(0.15);
  const path = `/v1/jobs/${raw ? id.replace(/[^\w/:%-]/gu, (ch) => enc(ch)) : enc(id)}`;
  return { kind: `job id (${method})`, detail: JSON.stringify(id.slice(0, 60)), service: "manager", method, path, headers: bearer(method === "GET" ? t.tokens.read : t.tokens.submit), expect: NOT_FOUND };
};

const taskPaths: Gen = (r, t) => {
  const [job] = t.taskId.split("/");
  const id = r.pick([`${job}/99`, `${job}/-1`, `${job}/1.5`, `${job}/abc`, `${job}/`, `/0`, `${job}`, `${missingId(r, t.jobIds)}/0`, `${job}/0x0`, `${job}/1e0`, `${job}/ 0`]);
  if (id === t.taskId) throw new Error("fuzz: generated an existing task id");
  const logs = r.chance(0.4);
  return { kind: logs ? "task id (logs)" : "task id", detail: JSON.stringify(id), service: "manager", method: "GET", path: `/v1/tasks/${enc(id)}${logs ? "/logs" : ""}`, headers: bearer(t.tokens.read), expect: NOT_FOUND };
};

const BAD_FLAGS = ["yes", "2", "TRUE", "", "on", "1,1", "-1", "true "];

const badQueries: Gen = (r, t) => {
  const variant = r.int(7);
  const q = (name: string, values: readonly string[]) => {
    if (r.chance(0.15)) return { query: `${name}=${enc(r.pick(values))}&${name}=${enc(r.pick(values))}`, field: name };
    return { query: `${name}=${enc(r.pick(values))}`, field: name };
  };
  const read = bearer(t.tokens.read);
  const make = (kind: string, method: string, path: string, field: string, headers = read, body?: Buffer): Omit<ApiCase, "index"> => ({
    kind: `query: ${kind}`, detail: path, service: "manager", method, path, headers, ...(body ? { body } : {}), expect: { ...BAD_REQUEST, field },
  });
  switch (variant) {
    case 0: {
      const { query, field } = q("status", ["Running", "all", "", "pending,running", "\u0000", "x".repeat(500), "complete ", "dead\n"]);
      return make("job status filter", "GET", `/v1/jobs?${query}`, field);
    }
    case 1: {
      const name = r.pick(["stream", "follow", "tail"]);
      const values = name === "stream" ? ["stdin", "STDOUT", "", "both", "stdout,stderr"] : name === "follow" ? BAD_FLAGS : ["-1", "abc", "1.5", "", "1e3", "9999999999"];
      const { query, field } = q(name, values);
      return make(`logs ${name}`, "GET", `/v1/tasks/${enc(t.taskId)}/logs?${query}`, field);
    }
    case 2: {
      const { query, field } = q("limit", ["0", "-1", "1001", "abc", "1e3", "", "1.5", "99999999"]);
      return make("alerts limit", "GET", `/v1/alerts?${query}`, field);
    }
    case 3: {
      const bad = r.chance(0.5) ? q("index", ["-1", "1.5", "abc", "Infinity", "NaN", "1,2", "--1", "\uFF11", "", "1e3", "0x10", " "]) : q("wait", ["-1", "abc", "Infinity", "1e3", "", "0x10", "30s"]);
      const other = bad.field === "index" ? "&wait=0" : "&index=0";
      return make(`names ${bad.field}`, "GET", `/v1/names/${r.pick(["web.frontend", "ns/web", "demo.web"]).replace("/", "%2F")}?${bad.query}${other}`, bad.field);
    }
    case 4: {
      const { query, field } = q("types", ["jobs", "", "job,", ",job", "job,,task", "JOB", "job task", "*", "alerts"]);
      return make("event types", "GET", `/v1/events?${query}`, field);
    }
    case 5: {
      const { query, field } = q("undo", BAD_FLAGS);
      return make("drain undo", "POST", `/v1/nodes/${enc(t.nodeId)}/drain?${query}`, field, bearer(t.tokens.admin), Buffer.alloc(0));
    }
    default: {
      const { query, field } = q("token", ["x"]);
      // A token in the query counts only for the event stream: elsewhere it is no token at all.
      return { kind: "query: token outside /v1/events", detail: `${query} (${field})`, service: "manager", method: "GET", path: `/v1/jobs?${query}`, headers: {}, expect: { status: [401], code: "unauthorized" } };
    }
  }
};

// --- manager: bodies of admin routes ---------------------------------------

const drainBodies: Gen = (r, t) => {
  if (r.chance(0.25)) {
    const node = missingId(r, [t.nodeId]);
    const body = r.pick(["", "{}", '{"undo":true}', '{"undo":false}']);
    return { kind: "drain: unknown node", detail: JSON.stringify(node), service: "manager", method: "POST", path: `/v1/nodes/${enc(node)}/drain`, headers: bearer(t.tokens.admin), body: Buffer.from(body), expect: NOT_FOUND };
  }
  const body = r.pick([...NOT_A_JSON_OBJECT, '{"undo":"yes"}', '{"undo":1}', '{"undo":null}', '{"extra":1}', '{"undo":true,"x":1}', '{"undo":[true]}', '{"Undo":true}']);
  return {
    kind: "drain: bad body", detail: JSON.stringify(body), service: "manager", method: "POST", path: `/v1/nodes/${enc(t.nodeId)}/drain`,
    headers: { ...bearer(t.tokens.admin), "content-type": r.pick(["application/json", "text/plain", "application/x-www-form-urlencoded"]) },
    body: Buffer.from(body), expect: BAD_REQUEST,
  };
};

/** Ways to break an agent report's schema (AgentReportSchema): every one leaves it invalid. */
const REPORT_BREAKS: readonly [string, (rep: Record<string, unknown>) => void][] = [
  ["agentId missing", (x) => delete x.agentId],
  ["agentId a number", (x) => (x.agentId = 5)],
  ["agentId empty", (x) => (x.agentId = "")],
  ["tasks missing", (x) => delete x.tasks],
  ["tasks a string", (x) => (x.tasks = "x")],
  ["tasks an object", (x) => (x.tasks = {})],
  ["task a number", (x) => (x.tasks = [5])],
  ["task id empty", (x) => (x.tasks = [{ taskId: "", attempt: 1, state: "running" }])],
  ["negative attempt", (x) => (x.tasks = [{ taskId: "a/0", attempt: -1, state: "running" }])],
  ["fractional attempt", (x) => (x.tasks = [{ taskId: "a/0", attempt: 1.5, state: "running" }])],
  ["unknown state", (x) => (x.tasks = [{ taskId: "a/0", attempt: 1, state: "paused" }])],
  ["exit code a string", (x) => (x.tasks = [{ taskId: "a/0", attempt: 1, state: "exited", exit: { exitCode: "1", signal: null, oomKilled: false, reason: "x" } }])],
  ["exit without reason", (x) => (x.tasks = [{ taskId: "a/0", attempt: 1, state: "exited", exit: { exitCode: 1, signal: null, oomKilled: false } }])],
  ["port a string", (x) => (x.tasks = [{ taskId: "a/0", attempt: 1, state: "running", ports: { http: "80" } }])],
  ["usage a string", (x) => (x.tasks = [{ taskId: "a/0", attempt: 1, state: "running", usage: { cpuNs: "lots" } }])],
  ["healthy a string", (x) => (x.tasks = [{ taskId: "a/0", attempt: 1, state: "running", healthy: "yes" }])],
  ["cachedPackages a string", (x) => (x.cachedPackages = "sha256:x")],
  ["cachedPackages of numbers", (x) => (x.cachedPackages = [1, 2])],
  ["cachedPackages null", (x) => (x.cachedPackages = null)],
  ["load a number", (x) => (x.load = 5)],
  ["load incomplete", (x) => (x.load = { cpu1m: 1 })],
  ["load a string", (x) => (x.load = { cpu1m: "high", memoryUsed: 1, diskFree: 1 })],
];

const agentReports: Gen = (r, t) => {
  const path = `/v1/agents/${enc(t.nodeId)}/report`;
  const base = { service: "manager" as const, method: "POST", headers: { ...bearer(t.tokens.admin), "content-type": "application/json" } };
  const report: Record<string, unknown> = { agentId: t.nodeId, tasks: [], cachedPackages: [], load: { cpu1m: 0.1, memoryUsed: 1, diskFree: 1 } };
  const variant = r.int(10);
  if (variant === 0) {
    const body = Buffer.from(r.pick(NOT_A_JSON_OBJECT));
    return { ...base, kind: "agent report: not an object", detail: body.toString(), path, body, expect: BAD_REQUEST };
  }
  if (variant === 1) {
    // Well-formed, for another agent than the URL names.
    const other = missingId(r, [t.nodeId]);
    return { ...base, kind: "agent report: URL names another agent", detail: JSON.stringify(other), path: `/v1/agents/${enc(other)}/report`, body: json(report), expect: { ...BAD_REQUEST, field: "agentId" } };
  }
  if (variant === 2 && r.chance(0.2)) {
    const body = json({ ...report, tasks: Array.from({ length: 16 * t.bodyLimit / 40 }, (_, i) => ({ taskId: `x/${i}`, attempt: 1, state: "running" })) });
    return { ...base, kind: "agent report: oversized", detail: `${body.length} bytes`, path, body, expect: { status: [413], code: "payload_too_large" } };
  }
  const [what, breakIt] = r.pick(REPORT_BREAKS);
  breakIt(report);
  return { ...base, kind: "agent report: wrong shape", detail: what, path, body: json(report), expect: BAD_REQUEST };
};

const packagePushes: Gen = (r, t) => {
  const base = { service: "manager" as const, method: "PUT", headers: { ...bearer(t.tokens.submit), "content-type": "application/gzip" } };
  const variant = r.int(4);
  const fresh = () => `fuzz-${r.u32().toString(36)}`;
  if (variant === 0) {
    const name = r.pick(["Demo", "-demo", ".demo", "démo", "demo app", "a".repeat(129), "demo\u0000", "de:mo", "_demo", "DEMO"]);
    return { ...base, kind: "package: bad name", detail: JSON.stringify(name), path: `/v1/packages/${enc(name)}/1.0`, body: gzipish(r, 16), expect: { ...BAD_REQUEST, field: "name" } };
  }
  if (variant === 1) {
    const version = r.pick(["1.0~beta", "v 1", "1/2", "x".repeat(129), "1.0\u0000", "é", "1:0", "1;0", "1,0", "%"]);
    return { ...base, kind: "package: bad version", detail: JSON.stringify(version), path: `/v1/packages/${fresh()}/${enc(version)}`, body: gzipish(r, 16), expect: { ...BAD_REQUEST, field: "version" } };
  }
  if (variant === 2) {
    const empty = r.chance(0.2);
    return { ...base, kind: empty ? "package: empty body" : "package: not gzip", detail: empty ? "0 bytes" : "non-gzip bytes", path: `/v1/packages/${fresh()}/1.0`, body: empty ? Buffer.alloc(0) : notGzip(r), expect: { ...BAD_REQUEST, field: "body" } };
  }
  return { ...base, kind: "package: oversized", detail: `${t.packageLimit + 1024} bytes`, path: `/v1/packages/${fresh()}/1.0`, body: gzipish(r, t.packageLimit + 1024), expect: { status: [413], code: "payload_too_large" } };
};

const nameLookups: Gen = (r, t) => {
  if (r.chance(0.3)) {
    const ns = r.pick(["NS", "a_b", "x".repeat(64), "-ns", "ns-", "n s", "é"]);
    return { kind: "names: bad namespace", detail: JSON.stringify(ns), service: "manager", method: "GET", path: `/v1/names/${enc(ns)}/web`, headers: bearer(t.tokens.read), expect: { ...BAD_REQUEST, field: "name" } };
  }
  const name = r.pick(["Web", "web..x", "a/b/c", "ns/Web", "a b", "ä", "x".repeat(300), "web_frontend", ".web", "web.", "web/", "/web", "NS/web", "web\u0000"]);
  return { kind: "names: bad name", detail: JSON.stringify(name), service: "manager", method: "GET", path: `/v1/names/${enc(name)}`, headers: bearer(t.tokens.read), expect: { ...BAD_REQUEST, field: "name" } };
};

const blobs: Gen = (r, t) => {
  const hex = (n: number) => r.string(n, "0123456789abcdef");
  if (r.chance(0.2)) return { kind: "blob: unknown digest", detail: "well-formed", service: "manager", method: "GET", path: `/v1/blobs/sha256:${hex(64)}`, headers: bearer(t.tokens.read), expect: NOT_FOUND };
  const digest = r.pick([`sha256:${hex(63)}`, `sha256:${hex(65)}`, `sha256:${hex(64).toUpperCase()}`, `md5:${hex(32)}`, hex(64), "sha256:", `sha256:${"g".repeat(64)}`, "../../etc/passwd", `sha256:${hex(64)}/x`, `SHA256:${hex(64)}`]);
  return { kind: "blob: bad digest", detail: JSON.stringify(digest), service: "manager", method: "GET", path: `/v1/blobs/${enc(digest)}`, headers: bearer(t.tokens.read), expect: { ...BAD_REQUEST, field: "digest" } };
};

// --- tokens ---------------------------------------------------------------------

/** Requests that a proper token would make valid: refused for the token alone, so nothing behind the check runs. */
function guarded(r: Prng, t: FuzzTarget): { service: Service; method: string; path: string; body?: Buffer; role: "read" | "submit" | "admin" }[] {
  const job = Buffer.from(`name: guarded-${r.u32()}\ntype: batch\nisolation: process\ncommand: ["/bin/true"]\n`);
  return [
    { service: "manager", method: "GET", path: "/v1/jobs", role: "read" },
    { service: "manager", method: "GET", path: `/v1/jobs/${enc(t.jobIds[0]!)}`, role: "read" },
    { service: "manager", method: "GET", path: "/metrics", role: "read" },
    { service: "manager", method: "GET", path: "/v1/packages", role: "read" },
    { service: "manager", method: "POST", path: "/v1/jobs", body: job, role: "submit" },
    { service: "manager", method: "DELETE", path: `/v1/jobs/${enc(t.jobIds[0]!)}`, role: "submit" },
    { service: "manager", method: "PUT", path: `/v1/packages/guarded-${r.u32()}/1.0`, body: gzipish(r, 32), role: "submit" },
    { service: "manager", method: "POST", path: `/v1/nodes/${enc(t.nodeId)}/drain`, body: Buffer.from("{}"), role: "admin" },
    { service: "manager", method: "POST", path: `/v1/agents/${enc(t.nodeId)}/report`, body: json({ agentId: t.nodeId, tasks: [] }), role: "admin" },
    { service: "agent", method: "GET", path: "/metrics", role: "read" },
    { service: "agent", method: "GET", path: "/v1/tasks", role: "read" },
    { service: "agent", method: "POST", path: `/v1/tasks/${enc(t.taskId)}/stop`, body: json({ epoch: 0 }), role: "admin" },
    { service: "agent", method: "PUT", path: `/v1/tasks/${enc("guarded/0")}`, body: json(validDispatch("guarded/0")), role: "admin" },
  ];
}

const RANK = { read: 0, submit: 1, admin: 2 } as const;

const tokens: Gen = (r, t) => {
  const g = r.pick(guarded(r, t));
  const weaker = (["read", "submit"] as const).filter((role) => RANK[role] < RANK[g.role]);
  if (weaker.length > 0 && r.chance(0.4)) {
    const role = r.pick(weaker);
    return { kind: "token: role too weak", detail: `${role} token for ${g.method} ${g.path}`, service: g.service, method: g.method, path: g.path, headers: bearer(t.tokens[role]), ...(g.body ? { body: g.body } : {}), expect: { status: [403], code: "forbidden" } };
  }
  const real = t.tokens.admin;
  const header = r.pick<string | undefined>([
    undefined, "", "Bearer", "Bearer ", `Basic ${Buffer.from(`admin:${real}`).toString("base64")}`, `Bearer ${real}x`, `Bearer ${real.slice(0, -1)}`,
    `Bearer ${real.toUpperCase()}`, `Bearer ${real} extra`, `Token ${real}`, `Bearer ${"A".repeat(4000)}`, `Bearer\t${r.string(20, "xyz")}`, `bearer  ${real}${real}`,
  ]);
  const headers: Record<string, string> = header === undefined ? {} : { authorization: header };
  return { kind: "token: missing or wrong", detail: `${JSON.stringify(header?.slice(0, 30))} for ${g.method} ${g.path}`, service: g.service, method: g.method, path: g.path, headers, ...(g.body ? { body: g.body } : {}), expect: { status: [401], code: "unauthorized" } };
};

// --- routes and methods ---------------------------------------------------------

const routes: Gen = (r, t) => {
  const service: Service = r.chance(0.3) ? "agent" : "manager";
  if (r.chance(0.5)) {
    const path = r.pick(["/v1/nope", "/v2/jobs", "/v1/jobs/x/y/z", "/v1//jobs", "/v1/jobs;x", "/v1/tasks/a/b/c/d", "/api/v1/jobs", "/v1/%00", "/v1/jobs%2Fx/y", "/.env", "/v1/names/a/b/c", "/v1/leader/x"]);
    return { kind: "route: unknown path", detail: path, service, method: r.pick(["GET", "POST", "DELETE"]), path, headers: bearer(t.tokens.admin), expect: NOT_FOUND };
  }
  const choices: readonly (readonly [string, string])[] =
    service === "manager"
      ? [["PATCH", "/v1/jobs"], ["PUT", "/v1/jobs"], ["POST", "/v1/names/web"], ["DELETE", "/v1/nodes"], ["PROPFIND", "/v1/jobs"], ["POST", "/v1/leader"], ["PUT", "/v1/alerts"], ["DELETE", "/v1/packages"], ["PATCH", "/v1/jobs/x"], ["SEARCH", "/v1/nodes"]]
      : [["POST", "/v1/tasks"], ["DELETE", "/v1/tasks/x"], ["PATCH", "/v1/status"], ["PROPFIND", "/v1/tasks"], ["PUT", "/v1/tasks/x/stop"]];
  const [method, path] = r.pick(choices);
  // 404 where a router leaves unknown methods to the ones after it (alerts): still a 4xx with a message.
  return { kind: "route: method not allowed", detail: `${method} ${path}`, service, method, path, headers: bearer(t.tokens.admin), expect: { status: [405, 404] } };
};

// --- agent ------------------------------------------------------------------------

function validDispatch(taskId: string): Record<string, unknown> {
  return {
    epoch: 0, taskId, jobId: taskId.split("/")[0], index: 0, attempt: 1,
    spec: { command: ["/bin/true"], env: {}, resources: { cpu: 0.1, memory: 16 * 1024 ** 2, disk: 0 }, ports: [], isolation: "process" },
  };
}

type Obj = Record<string, unknown>;
const spec = (d: Obj) => d.spec as Obj;

/** Ways to break a dispatch (DispatchSchema in agent/http/api.ts); each leaves it invalid, so no task ever starts. */
const DISPATCH_BREAKS: readonly [string, (d: Obj) => void][] = [
  ["epoch negative", (d) => (d.epoch = -1)],
  ["epoch fractional", (d) => (d.epoch = 1.5)],
  ["epoch a string", (d) => (d.epoch = "1")],
  ["epoch missing", (d) => delete d.epoch],
  ["huge epoch and no spec", (d) => ((d.epoch = 2 ** 52), delete d.spec)],
  ["taskId empty", (d) => (d.taskId = "")],
  ["taskId a number", (d) => (d.taskId = 5)],
  ["jobId empty", (d) => (d.jobId = "")],
  ["index negative", (d) => (d.index = -1)],
  ["index a string", (d) => (d.index = "0")],
  ["attempt zero", (d) => (d.attempt = 0)],
  ["attempt fractional", (d) => (d.attempt = 1.5)],
  ["digest malformed", (d) => (d.packageDigest = "sha256:xyz")],
  ["digest in capitals", (d) => (d.packageDigest = `sha256:${"A".repeat(64)}`)],
  ["unknown key", (d) => (d.extra = true)],
  ["spec missing", (d) => delete d.spec],
  ["spec a string", (d) => (d.spec = "run it")],
  ["spec null", (d) => (d.spec = null)],
  ["command empty", (d) => (spec(d).command = [])],
  ["command of numbers", (d) => (spec(d).command = [1, 2])],
  ["command a string", (d) => (spec(d).command = "/bin/true")],
  ["env of numbers", (d) => (spec(d).env = { A: 1 })],
  ["env a list", (d) => (spec(d).env = ["A=1"])],
  ["cpu zero", (d) => ((spec(d).resources as Obj).cpu = 0)],
  ["cpu a string", (d) => ((spec(d).resources as Obj).cpu = "1")],
  ["memory negative", (d) => ((spec(d).resources as Obj).memory = -1)],
  ["resources missing", (d) => delete spec(d).resources],
  ["ports a string", (d) => (spec(d).ports = "http")],
  ["port name a number", (d) => (spec(d).ports = [{ name: 1 }])],
  ["static port fractional", (d) => (spec(d).ports = [{ name: "http", static: 80.5 }])],
  ["isolation unknown", (d) => (spec(d).isolation = "docker")],
];

const agentDispatches: Gen = (r, t) => {
  const taskId = `fuzz-dispatch-${r.between(0, 99)}/0`;
  const base = { service: "agent" as const, method: "PUT", path: `/v1/tasks/${enc(taskId)}`, headers: { ...bearer(t.tokens.admin), "content-type": "application/json" } };
  const variant = r.int(12);
  if (variant === 0) {
    const body = Buffer.from(r.pick([...NOT_A_JSON_OBJECT, "", "epoch: 1\ntaskId: x\n"]));
    return { ...base, kind: "agent dispatch: not an object", detail: JSON.stringify(body.toString().slice(0, 30)), body, expect: BAD_REQUEST };
  }
  if (variant === 1) {
    // Well-formed, for another task than the URL names.
    return { ...base, kind: "agent dispatch: URL names another task", detail: taskId, path: `/v1/tasks/${enc(`other-${taskId}`)}`, body: json(validDispatch(taskId)), expect: { ...BAD_REQUEST, field: "taskId" } };
  }
  if (variant === 2 && r.chance(0.1)) {
    const d = validDispatch(taskId);
    spec(d).env = { PAD: "x".repeat(t.agentBodyLimit) };
    spec(d).command = [];
    return { ...base, kind: "agent dispatch: oversized", detail: `${t.agentBodyLimit} bytes of env`, body: json(d), expect: { status: [413], code: "payload_too_large" } };
  }
  const d = validDispatch(taskId);
  const [what, breakIt] = r.pick(DISPATCH_BREAKS);
  breakIt(d);
  return { ...base, kind: "agent dispatch: wrong shape", detail: what, body: json(d), expect: BAD_REQUEST };
};

const agentStops: Gen = (r, t) => {
  const body = r.pick([...INVALID_JSON, "", "{}", "null", "[]", '{"epoch":-1}', '{"epoch":"1"}', '{"epoch":1.5}', '{"epoch":0,"attempt":-1}', '{"epoch":0,"graceMs":600001}', '{"epoch":0,"graceMs":-1}', '{"epoch":0,"extra":1}', '{"epoch":null}', '{"attempt":1}']);
  const id = r.chance(0.5) ? t.taskId : missingId(r, [t.taskId]);
  return { kind: "agent stop: bad body", detail: JSON.stringify(body), service: "agent", method: "POST", path: `/v1/tasks/${enc(id)}/stop`, headers: { ...bearer(t.tokens.admin), "content-type": "application/json" }, body: Buffer.from(body), expect: BAD_REQUEST };
};

const agentReads: Gen = (r, t) => {
  if (r.chance(0.5)) {
    const id = missingId(r, [t.taskId]);
    return { kind: "agent: unknown task", detail: JSON.stringify(id.slice(0, 40)), service: "agent", method: "GET", path: `/v1/tasks/${enc(id)}`, headers: bearer(t.tokens.read), expect: NOT_FOUND };
  }
  const [name, values] = r.pick([
    ["attempt", ["abc", "0", "-1", "1.5", "", "1e2"]],
    ["stream", ["stdin", "", "STDERR"]],
    ["tail", ["-5", "x", ""]],
    ["follow", BAD_FLAGS],
  ] as const);
  return { kind: `agent logs: bad ${name}`, detail: "", service: "agent", method: "GET", path: `/v1/tasks/${enc(t.taskId)}/logs?${name}=${enc(r.pick(values))}`, headers: bearer(t.tokens.read), expect: { ...BAD_REQUEST, field: name } };
};

const GENERATORS: readonly (readonly [number, Gen])[] = [
  [28, taskFileRequest("/v1/jobs")],
  [5, taskFileRequest("/v1/jobs/plan")],
  [3, submitEdges],
  [6, jobPaths],
  [4, taskPaths],
  [8, badQueries],
  [5, drainBodies],
  [6, agentReports],
  [5, packagePushes],
  [4, nameLookups],
  [2, blobs],
  [8, tokens],
  [3, routes],
  [9, agentDispatches],
  [4, agentStops],
  [2, agentReads],
];

/** Request `index` of the run with `seed`. */
export function apiCase(seed: number, index: number, target: FuzzTarget): ApiCase {
  const r = Prng.forCase(seed, index);
  return { index, ...r.weighted(GENERATORS)(r, target) };
}
