/**
 * Task description files, as docs/task-file.md describes them.
 * Each test reads as a rule of the format; the table at the end pins down
 * which field, line, column and message every kind of mistake produces.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import schedule from "node-schedule";
import { checkCron, formatPath, parseTaskFile, suggest, validateJobObject } from "../../src/common/taskfile/index.js";
import { ValidationError } from "../../src/common/errors.js";
import type { JobSpec } from "../../src/common/types.js";
import { issuesOf } from "../harness/taskfile-issues.js";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

// Compiled to dist/test/unit/, so the repository root is three levels up.
const examplesDir = new URL("../../../config/examples/", import.meta.url);
function example(name: string): string {
  return readFileSync(new URL(name, examplesDir), "utf8");
}


const defaults: Pick<JobSpec, "namespace" | "instances" | "env" | "resources" | "constraints" | "ports" | "restart" | "placement"> = {
  namespace: "default",
  instances: 1,
  env: {},
  resources: { cpu: 0.1, memory: 64 * MiB, disk: 256 * MiB },
  constraints: [],
  ports: [],
  restart: { attempts: 3, delayMs: 1000, backoff: 2, maxDelayMs: 60_000 },
  // No strategy written: the cell's manager.placementStrategy decides.
  placement: {},
};

describe("examples in config/examples", () => {
  test("hello.yaml is a small batch job run as a process", () => {
    const spec = parseTaskFile(example("hello.yaml"), { source: "hello.yaml" });
    assert.deepEqual(spec, {
      ...defaults,
      name: "hello",
      type: "batch",
      priority: 100,
      command: ["/bin/sh", "-c", "echo hello from $TORCA_TASK on $TORCA_NODE"],
      isolation: "process",
      resources: { cpu: 0.1, memory: 32 * MiB, disk: 16 * MiB },
    } satisfies JobSpec);
  });

  test("sleep.yaml runs three instances of sleep 30", () => {
    const spec = parseTaskFile(example("sleep.yaml"), { source: "sleep.yaml" });
    assert.deepEqual(spec, {
      ...defaults,
      name: "sleep",
      type: "batch",
      priority: 100,
      instances: 3,
      command: ["/bin/sleep", "30"],
      resources: { cpu: 0.1, memory: 16 * MiB, disk: 16 * MiB },
      restart: { attempts: 1, delayMs: 2000, backoff: 2, maxDelayMs: 60_000 },
    } satisfies JobSpec);
  });

  test("service.yaml is a service with an http port, a health check and a service name", () => {
    const spec = parseTaskFile(example("service.yaml"), { source: "service.yaml" });
    const { command, ...rest } = spec;
    assert.deepEqual(rest, {
      ...defaults,
      name: "web",
      type: "service",
      priority: 200,
      instances: 2,
      isolation: "process",
      resources: { cpu: 0.25, memory: 128 * MiB, disk: 64 * MiB },
      ports: [{ name: "http", check: { type: "http", path: "/healthz", intervalMs: 5000, timeoutMs: 1000, failures: 3 } }],
      service: { name: "demo.web" },
      restart: { attempts: 3, delayMs: 1000, backoff: 2, maxDelayMs: 30_000 },
      placement: { strategy: "spread" },
    });
    assert.equal(command.length, 3);
    assert.deepEqual(command.slice(0, 2), ["node", "-e"]);
    assert.match(command[2]!, /process\.env\.TORCA_PORT_HTTP/);
    assert.match(command[2]!, /\/healthz/);
  });

  test("cron.yaml is a batch job with a schedule every minute", () => {
    const spec = parseTaskFile(example("cron.yaml"), { source: "cron.yaml" });
    assert.equal(spec.type, "batch");
    assert.equal(spec.priority, 100);
    assert.equal(spec.schedule, "*/1 * * * *");
    assert.equal(spec.restart.attempts, 0);
    assert.deepEqual(spec.command.slice(0, 2), ["/bin/sh", "-c"]);
  });
});

describe("defaults", () => {
  test("name and command are enough; everything else has a default", () => {
    assert.deepEqual(parseTaskFile("name: web\ncommand: [bin/server]\n"), {
      ...defaults,
      name: "web",
      type: "service",
      priority: 200,
      command: ["bin/server"],
    } satisfies JobSpec);
  });

  test("without type, a schedule makes the job batch with batch priority", () => {
    const spec = parseTaskFile("name: nightly\nschedule: '0 3 * * *'\ncommand: [backup]\n");
    assert.equal(spec.type, "batch");
    assert.equal(spec.priority, 100);
  });

  test("priority defaults follow the type; explicit priority wins", () => {
    assert.equal(parseTaskFile("name: a\ntype: batch\ncommand: [x]\n").priority, 100);
    assert.equal(parseTaskFile("name: a\ntype: service\ncommand: [x]\n").priority, 200);
    assert.equal(parseTaskFile("name: a\ntype: batch\npriority: prod\ncommand: [x]\n").priority, 200);
    assert.equal(parseTaskFile("name: a\npriority: batch\ncommand: [x]\n").priority, 100);
    assert.equal(parseTaskFile("name: a\npriority: 0\ncommand: [x]\n").priority, 0);
    assert.equal(parseTaskFile("name: a\npriority: 1000\ncommand: [x]\n").priority, 1000);
  });

  test("an http check defaults to path /, 5s interval, 1s timeout, 3 failures; a tcp check has no path", () => {
    const spec = parseTaskFile("name: a\ncommand: [x]\nports:\n  - { name: http, check: { type: http } }\n  - { name: db, static: 5432, check: { type: tcp } }\n");
    assert.deepEqual(spec.ports, [
      { name: "http", check: { type: "http", path: "/", intervalMs: 5000, timeoutMs: 1000, failures: 3 } },
      { name: "db", static: 5432, check: { type: "tcp", intervalMs: 5000, timeoutMs: 1000, failures: 3 } },
    ]);
  });

  test("notify defaults to alerting on failed and lost, with no sms", () => {
    const spec = parseTaskFile("name: a\ncommand: [x]\nnotify: { email: [ops@example.com] }\n");
    assert.deepEqual(spec.notify, { email: ["ops@example.com"], sms: [], on: ["failed", "lost"] });
  });

  test("a restart delay above the default one-minute cap raises the cap instead of being cut", () => {
    const spec = parseTaskFile("name: a\ncommand: [x]\nrestart: { delay: 5m }\n");
    assert.deepEqual(spec.restart, { attempts: 3, delayMs: 300_000, backoff: 2, maxDelayMs: 300_000 });
  });

  test("placement keeps maxPerNode only when given", () => {
    assert.deepEqual(parseTaskFile("name: a\ncommand: [x]\nplacement: { maxPerNode: 2 }\n").placement, { maxPerNode: 2 });
    assert.equal("maxPerNode" in parseTaskFile("name: a\ncommand: [x]\n").placement, false);
  });
});

describe("units and values", () => {
  test("cpu in cores or millicores, memory and disk in binary or decimal units", () => {
    const spec = parseTaskFile("name: a\ncommand: [x]\nresources: { cpu: 500m, memory: 1GiB, disk: 512M }\n");
    assert.deepEqual(spec.resources, { cpu: 0.5, memory: GiB, disk: 512e6 });
    assert.equal(parseTaskFile("name: a\ncommand: [x]\nresources: { cpu: 2 }\n").resources.cpu, 2);
    assert.equal(parseTaskFile("name: a\ncommand: [x]\nresources: { memory: 4MiB }\n").resources.memory, 4 * MiB);
  });

  test("durations: compound and plain-millisecond forms", () => {
    const spec = parseTaskFile("name: a\ncommand: [x]\nports: [{ name: p, check: { type: tcp, interval: 1m30s, timeout: 250 } }]\nrestart: { delay: 500ms, maxDelay: 2h }\n");
    assert.equal(spec.ports[0]!.check!.intervalMs, 90_000);
    assert.equal(spec.ports[0]!.check!.timeoutMs, 250);
    assert.equal(spec.restart.delayMs, 500);
    assert.equal(spec.restart.maxDelayMs, 7_200_000);
  });

  test("env and argv scalars reach the task exactly as written", () => {
    const spec = parseTaskFile('name: a\ncommand: [sleep, 30, 1.50]\nenv:\n  VERSION: 1.10\n  DEBUG: true\n  MASK: 0x1F\n  QUOTED: "007"\n  EMPTY: ""\n');
    assert.deepEqual(spec.command, ["sleep", "30", "1.50"]);
    assert.deepEqual(spec.env, { VERSION: "1.10", DEBUG: "true", MASK: "0x1F", QUOTED: "007", EMPTY: "" });
  });

  test("package: name@version or a sha256 digest (normalized to lowercase), with the text kept", () => {
    const named = parseTaskFile("name: a\ncommand: [x]\npackage: webapp@1.2.0+build.7\n");
    assert.deepEqual(named.package, { kind: "named", name: "webapp", version: "1.2.0+build.7" });
    assert.equal(named.packageText, "webapp@1.2.0+build.7");
    const hex = "AB".repeat(32);
    const digest = parseTaskFile(`name: a\ncommand: [x]\npackage: sha256:${hex}\n`);
    assert.deepEqual(digest.package, { kind: "digest", digest: `sha256:${hex.toLowerCase()}` });
    assert.equal(digest.packageText, `sha256:${hex}`);
  });

  test("constraints keep their operator; in takes a list; numbers become strings", () => {
    const spec = parseTaskFile(
      'name: a\ncommand: [x]\nconstraints:\n  - { attribute: os, operator: "=", value: linux }\n  - { attribute: zone, operator: in, value: [a, b] }\n  - { attribute: cores, operator: "!=", value: 8 }\n  - { attribute: host, operator: regexp, value: "^node-[0-9]+$" }\n',
    );
    assert.deepEqual(spec.constraints, [
      { attribute: "os", operator: "=", value: "linux" },
      { attribute: "zone", operator: "in", value: ["a", "b"] },
      { attribute: "cores", operator: "!=", value: "8" },
      { attribute: "host", operator: "regexp", value: "^node-[0-9]+$" },
    ]);
  });

  test("notify: sms numbers may be quoted or bare, events are de-duplicated", () => {
    const spec = parseTaskFile('name: a\ncommand: [x]\nnotify: { sms: ["+15550100", 4915550100], on: [oom-killed, failed, oom-killed] }\n');
    assert.deepEqual(spec.notify, { email: [], sms: ["+15550100", "4915550100"], on: ["oom-killed", "failed"] });
  });

  test("a schedule is stored with its whitespace normalized", () => {
    assert.equal(parseTaskFile("name: a\ncommand: [x]\nschedule: '  0  3 * *   mon-fri '\n").schedule, "0 3 * * mon-fri");
  });

  test("YAML anchors and aliases work like copies", () => {
    const spec = parseTaskFile("name: a\ncommand: [x]\nenv: &e { A: b }\nports:\n  - { name: p }\nconstraints:\n  - { attribute: x, operator: in, value: &v [a] }\n  - { attribute: y, operator: in, value: *v }\n");
    assert.deepEqual(spec.constraints.map((c) => c.value), [["a"], ["a"]]);
    assert.deepEqual(spec.env, { A: "b" });
  });
});

describe("security", () => {
  test("user: root is kept; without user the spec has none (the agent's unprivileged task user)", () => {
    assert.equal(parseTaskFile("name: a\ncommand: [x]\nuser: root\n").user, "root");
    assert.equal("user" in parseTaskFile("name: a\ncommand: [x]\n"), false);
  });

  test("regexp constraints accept RE2 syntax, including what JavaScript lacks", () => {
    const spec = parseTaskFile("name: a\ncommand: [x]\nconstraints:\n  - { attribute: host, operator: regexp, value: '(?i)^NODE-\\d+$' }\n");
    assert.deepEqual(spec.constraints, [{ attribute: "host", operator: "regexp", value: "(?i)^NODE-\\d+$" }]);
  });

  test("a pattern with nested lazy stars is accepted: it cannot blow up in a linear-time engine", () => {
    const spec = parseTaskFile("name: a\ncommand: [x]\nconstraints:\n  - { attribute: host, operator: regexp, value: '^(.*?)*(.*?)*(.*?)*(.*?)*!$' }\n");
    assert.equal(spec.constraints[0]!.value, "^(.*?)*(.*?)*(.*?)*(.*?)*!$");
  });
});

describe("JSON", () => {
  const json = JSON.stringify({
    name: "web",
    type: "service",
    instances: 2,
    command: ["bin/server", "--port", "${TORCA_PORT_HTTP}"],
    resources: { cpu: 0.5, memory: "256MiB", disk: "1GiB" },
    ports: [{ name: "http", check: { type: "http", path: "/healthz", interval: "5s", timeout: "1s" } }],
    service: { name: "web.frontend" },
  }, null, 2);

  test("JSON text gives the same JobSpec as the equivalent YAML", () => {
    const yaml = [
      "name: web",
      "type: service",
      "instances: 2",
      'command: ["bin/server", "--port", "${TORCA_PORT_HTTP}"]',
      "resources: { cpu: 0.5, memory: 256MiB, disk: 1GiB }",
      "ports:",
      "  - { name: http, check: { type: http, path: /healthz, interval: 5s, timeout: 1s } }",
      "service: { name: web.frontend }",
    ].join("\n");
    assert.deepEqual(parseTaskFile(json, { source: "web.json" }), parseTaskFile(yaml));
    assert.deepEqual(parseTaskFile(json), parseTaskFile(yaml));
  });

  test("validation issues in JSON carry the JSON line and column", () => {
    const bad = json.replace('"256MiB"', '"lots"');
    const [issue] = issuesOf(bad, { source: "web.json" });
    assert.deepEqual(issue, { field: "resources.memory", message: '"lots" is not a size (use e.g. 256MiB, 1GiB, 512M)', line: 12, column: 15 });
  });

  test("a byte-order mark at the start is ignored", () => {
    assert.equal(parseTaskFile('\uFEFF{"name": "a", "command": ["x"]}', { source: "a.json" }).name, "a");
    assert.equal(parseTaskFile("\uFEFFname: a\ncommand: [x]\n").name, "a");
  });

  test("a file that starts with { but is YAML flow style is read as YAML", () => {
    assert.equal(parseTaskFile("{name: a, command: [x]}").name, "a");
  });

  test("with format json, YAML syntax is a JSON error", () => {
    const [issue] = issuesOf("{name: a, command: [x]}", { format: "json" });
    assert.match(issue!.message, /^invalid JSON: /);
    assert.equal(issue!.line, 1);
    assert.equal(issue!.column, 2);
  });
});

describe("validateJobObject", () => {
  test("applies the same rules and defaults to an already-parsed object", () => {
    const spec = validateJobObject({ name: "a", command: ["x"], resources: { memory: "1GiB" } });
    assert.equal(spec.resources.memory, GiB);
    assert.equal(spec.type, "service");
  });

  test("reports every issue, without positions", () => {
    assert.throws(
      () => validateJobObject({ name: "A", command: "x", instnaces: 2 }),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.deepEqual(e.issues.map((i) => i.field).sort(), ["command", "instnaces", "name"]);
        assert.ok(e.issues.every((i) => i.line === undefined && i.column === undefined));
        return true;
      },
    );
  });

  test("rejects values that are not plain mappings", () => {
    for (const v of [null, "name: a", [], new Date(), new Map([["name", "a"]])]) {
      assert.throws(() => validateJobObject(v), ValidationError);
    }
  });
});

describe("errors", () => {
  test("all issues are collected, sorted by line, and formatted with the source name", () => {
    const text = ["name: Web", "instances: 0", "command: [x]", "resources:", "  memory: lots", "  cpuu: 1", "type: servce"].join("\n");
    try {
      parseTaskFile(text, { source: "web.yaml" });
      assert.fail("expected a ValidationError");
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      assert.deepEqual(e.issues.map((i) => [i.field, i.line]), [["name", 1], ["instances", 2], ["resources.memory", 5], ["resources.cpuu", 6], ["type", 7]]);
      assert.equal(e.code, "invalid_input");
      assert.equal(e.status, 400);
      assert.equal(e.exitCode, 2);
      assert.equal(e.message.split("\n")[2], 'web.yaml:5:11: resources.memory: "lots" is not a size (use e.g. 256MiB, 1GiB, 512M)');
      assert.ok(!/Expected|received|ZodError/.test(e.message), "no library jargon in messages");
    }
  });

  test("a missing required key is reported once even when it was written without a value", () => {
    const issues = issuesOf("name:\ncommand: [x]\n");
    assert.deepEqual(issues, [{ field: "name", message: "has no value (give one, or remove the key to use the default)", line: 1, column: 1 }]);
  });
});

describe("helpers", () => {
  test("suggest catches typos, transpositions, case and common aliases, and nothing else", () => {
    const keys = ["name", "instances", "command", "resources", "schedule"];
    assert.equal(suggest("instnaces", keys), "instances");
    assert.equal(suggest("Name", keys), "name");
    assert.equal(suggest("comand", keys), "command");
    assert.equal(suggest("replicas", keys), "instances");
    assert.equal(suggest("cron", keys), "schedule");
    assert.equal(suggest("colour", keys), undefined);
    assert.equal(suggest("failure", ["failed", "lost", "cron-failed"]), "failed");
    assert.equal(suggest("com", keys), undefined, "a stem needs four letters");
  });

  test("formatPath writes indexes in brackets and quotes odd keys", () => {
    assert.equal(formatPath(["ports", 1, "check", "timeout"]), "ports[1].check.timeout");
    assert.equal(formatPath(["env", "A.B"]), 'env["A.B"]');
    assert.equal(formatPath([]), "");
  });

  const accepted = ["*/1 * * * *", "0 3 * * mon-fri", "0,30 9-17 * * 1-5", "0 0 1 jan,jul *", "30 */2 * * * *", "0 0 29 2 *", "0 0 31 * 7", "5-55/10 * * * *"];
  test("every cron expression we accept is one node-schedule can run", () => {
    for (const expr of accepted) {
      assert.equal(checkCron(expr), undefined, expr);
      const job = schedule.scheduleJob(expr, () => undefined);
      assert.ok(job, `node-schedule rejected ${expr}`);
      job.cancel();
    }
  });

  test("cron expressions outside the promised subset are rejected with the cron field named", () => {
    assert.match(checkCron("* * * *")!, /expected 5 fields/);
    assert.match(checkCron("* * * * * * *")!, /got 7/);
    assert.match(checkCron("0 24 * * *")!, /^hour field "24": 24 is out of range 0-23/);
    assert.match(checkCron("0 0 0 * *")!, /^day-of-month field "0"/);
    assert.match(checkCron("0 0 * 13 *")!, /^month field "13"/);
    assert.match(checkCron("0 0 * * 8")!, /^day-of-week field "8"/);
    assert.match(checkCron("*/0 * * * *")!, /step must be at least 1/);
    assert.match(checkCron("5/15 * * * *")!, /a step needs a range/);
    assert.match(checkCron("0 0 L * *")!, /is not a number/);
    assert.match(checkCron("30-10 * * * *")!, /goes backwards/);
    assert.match(checkCron("0 0 30,31 2 *")!, /never fires/);
    assert.equal(checkCron("0 0 30 2 mon"), undefined, "day-of-week ORs with day-of-month, so this fires on Mondays");
  });
});

// ---------------------------------------------------------------------------

interface Malformed {
  title: string;
  text: string;
  field: string;
  line: number;
  column?: number;
  message: string;
  opts?: { source?: string; format?: "yaml" | "json" };
}

/** `name` and `command` lines prepended to most cases; positions below count them. */
const head = "name: demo\ncommand: [x]\n";

const malformed: Malformed[] = [
  // Unknown keys, with suggestions
  { title: "unknown key with a typo", text: head + "instnaces: 3\n", field: "instnaces", line: 3, column: 1, message: 'unknown key "instnaces" (did you mean "instances"?)' },
  { title: "unknown nested key", text: head + "resources:\n  cpu: 1\n  memroy: 1GiB\n", field: "resources.memroy", line: 5, column: 3, message: 'did you mean "memory"?' },
  { title: "unknown key far from any known key lists the allowed keys", text: head + "colour: red\n", field: "colour", line: 3, column: 1, message: "allowed: name, namespace, type" },
  { title: "a key from another system is mapped to ours", text: head + "replicas: 3\n", field: "replicas", line: 3, column: 1, message: 'did you mean "instances"?' },
  { title: "unknown key inside a port check", text: head + "ports:\n  - name: http\n    check:\n      type: http\n      intervall: 5s\n", field: "ports[0].check.intervall", line: 7, column: 7, message: 'did you mean "interval"?' },
  { title: "unknown key in a constraint", text: head + "constraints:\n  - { attribute: os, operator: '=', value: linux, weight: 2 }\n", field: "constraints[0].weight", line: 4, column: 51, message: 'unknown key "weight" (allowed: attribute, operator, value)' },
  // Required keys
  { title: "missing name points at the top-level mapping", text: "command: [x]\ninstances: 2\n", field: "name", line: 1, column: 1, message: "is required" },
  { title: "missing command", text: "name: demo\n", field: "command", line: 1, column: 1, message: "is required" },
  { title: "missing port name points at the port", text: head + "ports:\n  - static: 8080\n", field: "ports[0].name", line: 4, column: 5, message: "is required" },
  { title: "a key without a value", text: head + "instances:\n", field: "instances", line: 3, column: 1, message: "has no value" },
  // name / namespace / type / priority / instances
  { title: "uppercase name", text: "name: Web\ncommand: [x]\n", field: "name", line: 1, column: 7, message: '"Web" is not a valid name' },
  { title: "name starting with -", text: "name: -web\ncommand: [x]\n", field: "name", line: 1, column: 7, message: 'not starting or ending with "-"' },
  { title: "name longer than 63 characters", text: `name: ${"a".repeat(64)}\ncommand: [x]\n`, field: "name", line: 1, column: 7, message: "is 64 characters long (at most 63)" },
  { title: "name that is a number", text: "name: 42\ncommand: [x]\n", field: "name", line: 1, column: 7, message: "must be a string, got 42" },
  { title: "namespace with an underscore", text: head + "namespace: my_team\n", field: "namespace", line: 3, column: 12, message: "is not a valid namespace" },
  { title: "misspelled type", text: head + "type: servce\n", field: "type", line: 3, column: 7, message: 'did you mean "service"?' },
  { title: "priority word that does not exist", text: head + "priority: high\n", field: "priority", line: 3, column: 11, message: '"high" is not a priority (use prod, batch, or an integer from 0 to 1000)' },
  { title: "priority above 1000", text: head + "priority: 1001\n", field: "priority", line: 3, column: 11, message: "1001 is not a priority" },
  { title: "instances 0", text: head + "instances: 0\n", field: "instances", line: 3, column: 12, message: "must be from 1 to 10000, got 0" },
  { title: "instances as a word", text: head + "instances: three\n", field: "instances", line: 3, column: 12, message: 'must be an integer from 1 to 10000, got "three"' },
  { title: "fractional instances", text: head + "instances: 2.5\n", field: "instances", line: 3, column: 12, message: "must be a whole number, got 2.5" },
  // package / command / env
  { title: "package without a version", text: head + "package: webapp\n", field: "package", line: 3, column: 10, message: "missing @version" },
  { title: "package digest too short", text: head + "package: sha256:abc123\n", field: "package", line: 3, column: 10, message: "exactly 64 hex digits" },
  { title: "command as a string suggests the argv form", text: "name: demo\ncommand: sleep 30\n", field: "command", line: 2, column: 10, message: 'write command: ["sleep", "30"]' },
  { title: "command string with shell syntax suggests sh -c", text: "name: demo\ncommand: echo hi > /tmp/x\n", field: "command", line: 2, column: 10, message: '["/bin/sh", "-c", "echo hi > /tmp/x"]' },
  { title: "empty command", text: "name: demo\ncommand: []\n", field: "command", line: 2, column: 10, message: "must not be empty" },
  { title: "command argument that is a mapping", text: "name: demo\ncommand:\n  - echo\n  - { a: 1 }\n", field: "command[1]", line: 4, column: 5, message: "must be a string, got a mapping" },
  { title: "reserved env key points at the key", text: head + "env:\n  LOG: info\n  TORCA_NODE: fake\n", field: "env.TORCA_NODE", line: 5, column: 3, message: "TORCA_NODE is reserved" },
  { title: "env key that is not a variable name", text: head + "env:\n  1X: y\n", field: 'env["1X"]', line: 4, column: 3, message: "is not a valid environment variable name" },
  { title: "env key __proto__ is refused rather than silently lost", text: head + "env: { __proto__: x, A: b }\n", field: "env.__proto__", line: 3, column: 8, message: "is not allowed as an environment variable name" },
  { title: "env value that is a list", text: head + "env:\n  PATHS: [a, b]\n", field: "env.PATHS", line: 4, column: 10, message: "must be a string, got a list" },
  { title: "env written as a list", text: head + "env:\n  - A=1\n", field: "env", line: 4, column: 3, message: "must be a mapping of NAME: value" },
  // resources / isolation
  { title: "memory that is not a size", text: head + "resources:\n  memory: lots\n", field: "resources.memory", line: 4, column: 11, message: '"lots" is not a size (use e.g. 256MiB, 1GiB, 512M)' },
  { title: "memory as a bare number is bytes and too small", text: head + "resources: { memory: 1000 }\n", field: "resources.memory", line: 3, column: 22, message: "plain numbers are bytes" },
  { title: "cpu as a word", text: head + "resources: { cpu: fast }\n", field: "resources.cpu", line: 3, column: 19, message: '"fast" is not a cpu amount' },
  { title: "cpu of zero", text: head + "resources: { cpu: 0 }\n", field: "resources.cpu", line: 3, column: 19, message: "must be a positive number of cores" },
  { title: "cpu above 1024 cores", text: head + "resources: { cpu: 2000 }\n", field: "resources.cpu", line: 3, column: 19, message: "must be at most 1024 cores" },
  { title: "disk with an unknown unit", text: head + "resources: { disk: 5XB }\n", field: "resources.disk", line: 3, column: 20, message: 'unknown size unit "XB"' },
  { title: "resources as a scalar", text: head + "resources: big\n", field: "resources", line: 3, column: 12, message: "must be a mapping of keys" },
  { title: "unknown isolation", text: head + "isolation: docker\n", field: "isolation", line: 3, column: 12, message: '"docker" is not one of "lxc", "process"' },
  // constraints
  { title: "constraint operator == suggests =", text: head + "constraints:\n  - { attribute: os, operator: '==', value: linux }\n", field: "constraints[0].operator", line: 4, column: 32, message: 'did you mean "="?' },
  { title: "in with a single value", text: head + "constraints:\n  - { attribute: zone, operator: in, value: eu-1 }\n", field: "constraints[0].value", line: 4, column: 45, message: 'operator "in" needs a list of values' },
  { title: "= with a list suggests in", text: head + "constraints:\n  - { attribute: zone, operator: '=', value: [a, b] }\n", field: "constraints[0].value", line: 4, column: 46, message: 'use operator "in"' },
  { title: "regexp that does not compile", text: head + "constraints:\n  - attribute: host\n    operator: regexp\n    value: 'node-(\\d+'\n", field: "constraints[0].value", line: 6, column: 12, message: "is not a valid regular expression" },
  { title: "regexp with lookahead, which the linear-time engine does not run", text: head + "constraints:\n  - { attribute: host, operator: regexp, value: 'node(?=-1)' }\n", field: "constraints[0].value", line: 4, column: 49, message: "unsupported Perl syntax: `(?=` (constraint patterns use RE2 syntax, which matches in linear time: no backreferences or lookaround)" },
  { title: "regexp with a backreference", text: head + "constraints:\n  - attribute: host\n    operator: regexp\n    value: '(a)\\1'\n", field: "constraints[0].value", line: 6, column: 12, message: "invalid escape sequence: `\\1`" },
  { title: "constraint without an attribute", text: head + "constraints:\n  - { operator: '=', value: linux }\n", field: "constraints[0].attribute", line: 4, column: 5, message: "is required" },
  { title: "constraints as a mapping", text: head + "constraints:\n  os: linux\n", field: "constraints", line: 4, column: 3, message: "must be a list" },
  // user
  { title: "user other than root", text: head + "user: nobody\n", field: "user", line: 3, column: 7, message: '"nobody" is not accepted: the only value is "root"' },
  { title: "user as a boolean", text: head + "user: true\n", field: "user", line: 3, column: 7, message: 'true is not accepted: the only value is "root"' },
  // ports and checks
  { title: "duplicate port names", text: head + "ports:\n  - name: http\n  - name: admin\n  - name: http\n", field: "ports[2].name", line: 6, column: 11, message: 'duplicate port name "http" (also used by ports[0])' },
  { title: "port name with uppercase", text: head + "ports:\n  - name: HTTP\n", field: "ports[0].name", line: 4, column: 11, message: "is not a valid port name" },
  { title: "static port out of range", text: head + "ports:\n  - { name: http, static: 70000 }\n", field: "ports[0].static", line: 4, column: 27, message: "must be from 1 to 65535, got 70000" },
  { title: "two ports on the same static port", text: head + "ports:\n  - { name: a, static: 80 }\n  - { name: b, static: 80 }\n", field: "ports[1].static", line: 5, column: 24, message: "static port 80 is already used by ports[0]" },
  { title: "check timeout not below interval", text: head + "ports:\n  - name: http\n    check: { type: http, interval: 1s, timeout: 1s }\n", field: "ports[0].check.timeout", line: 5, column: 49, message: "must be less than interval (1000ms), got 1000ms" },
  { title: "check interval below the default timeout", text: head + "ports:\n  - name: http\n    check: { type: tcp, interval: 500ms }\n", field: "ports[0].check.interval", line: 5, column: 35, message: "must be greater than timeout (1000ms, the default)" },
  { title: "check path on a tcp check", text: head + "ports:\n  - name: db\n    check: { type: tcp, path: /healthz }\n", field: "ports[0].check.path", line: 5, column: 31, message: "is only for http checks" },
  { title: "check path without a leading slash", text: head + "ports:\n  - name: web\n    check: { type: http, path: healthz }\n", field: "ports[0].check.path", line: 5, column: 32, message: 'must start with "/"' },
  { title: "check interval that is not a duration", text: head + "ports:\n  - name: web\n    check: { type: http, interval: soon }\n", field: "ports[0].check.interval", line: 5, column: 36, message: '"soon" is not a duration' },
  { title: "check without a type", text: head + "ports:\n  - name: web\n    check:\n      path: /\n", field: "ports[0].check.type", line: 6, column: 7, message: "is required" },
  { title: "check failures of zero", text: head + "ports:\n  - name: web\n    check: { type: tcp, failures: 0 }\n", field: "ports[0].check.failures", line: 5, column: 35, message: "must be from 1 to 1000, got 0" },
  // service
  { title: "service without ports", text: head + "service: { name: web.frontend }\n", field: "service", line: 3, column: 10, message: "a service needs at least one port" },
  { title: "service name with an underscore", text: head + "ports: [{ name: http }]\nservice:\n  name: web_front\n", field: "service.name", line: 5, column: 9, message: "is not a valid service name" },
  // schedule
  { title: "schedule on a service job", text: head + "type: service\nschedule: '*/5 * * * *'\n", field: "schedule", line: 4, column: 11, message: "is for batch jobs only" },
  { title: "cron with four fields", text: head + "schedule: '*/5 * * *'\n", field: "schedule", line: 3, column: 11, message: "expected 5 fields" },
  { title: "cron minute out of range", text: head + "schedule: '75 * * * *'\n", field: "schedule", line: 3, column: 11, message: 'minute field "75": 75 is out of range 0-59' },
  { title: "cron weekday name that does not exist", text: head + "schedule: '0 9 * * fun'\n", field: "schedule", line: 3, column: 11, message: 'day-of-week field "fun"' },
  { title: "cron that can never fire", text: head + "schedule: '0 0 31 feb *'\n", field: "schedule", line: 3, column: 11, message: "never fires" },
  { title: "schedule as a number", text: head + "schedule: 5\n", field: "schedule", line: 3, column: 11, message: "must be a string" },
  // restart
  { title: "restart backoff below 1", text: head + "restart: { backoff: 0.5 }\n", field: "restart.backoff", line: 3, column: 21, message: "must be at least 1" },
  { title: "negative restart attempts", text: head + "restart:\n  attempts: -1\n", field: "restart.attempts", line: 4, column: 13, message: "must be from 0 to 1000000, got -1" },
  { title: "restart maxDelay shorter than delay", text: head + "restart: { delay: 10s, maxDelay: 5s }\n", field: "restart.maxDelay", line: 3, column: 34, message: "must be at least delay (10000ms)" },
  // notify
  { title: "notify event misspelled", text: head + "notify:\n  email: [ops@example.com]\n  on: [failure]\n", field: "notify.on[0]", line: 5, column: 8, message: 'did you mean "failed"?' },
  { title: "notify email that is not an address", text: head + "notify: { email: [ops.example.com] }\n", field: "notify.email[0]", line: 3, column: 19, message: '"ops.example.com" is not an email address' },
  { title: "notify sms that is not a number", text: head + "notify: { sms: [call me] }\n", field: "notify.sms[0]", line: 3, column: 17, message: "is not a phone number" },
  { title: "notify email as a single string", text: head + "notify: { email: ops@example.com }\n", field: "notify.email", line: 3, column: 18, message: "must be a list, e.g. [ops@example.com]" },
  { title: "notify without recipients", text: head + "notify:\n  on: [failed]\n", field: "notify", line: 4, column: 3, message: "needs at least one email or sms recipient" },
  // placement
  { title: "unknown placement strategy", text: head + "placement: { strategy: random }\n", field: "placement.strategy", line: 3, column: 24, message: '"random" is not one of "binpack", "spread", "fragmentation"' },
  { title: "placement maxPerNode of zero", text: head + "placement: { maxPerNode: 0 }\n", field: "placement.maxPerNode", line: 3, column: 26, message: "must be from 1 to 10000, got 0" },
  // Document-level problems
  { title: "empty file", text: "", field: "", line: 1, column: 1, message: "the file is empty" },
  { title: "file with only comments", text: "# nothing here\n", field: "", line: 1, column: 1, message: "the file is empty" },
  { title: "top-level list", text: "- name: demo\n- command: [x]\n", field: "", line: 1, column: 1, message: "the top level must be a mapping of keys (name:, command:, ...), not a list" },
  { title: "top-level scalar", text: "hello\n", field: "", line: 1, column: 1, message: 'not "hello"' },
  { title: "duplicate top-level key", text: "name: a\ncommand: [x]\nname: b\n", field: "name", line: 3, column: 1, message: 'duplicate key "name"' },
  { title: "duplicate nested key", text: head + "env:\n  A: 1\n  A: 2\n", field: "env.A", line: 5, column: 3, message: 'duplicate key "A"' },
  { title: "YAML indentation error", text: "name: demo\ncommand: [x]\nresources:\n  cpu: 1\n memory: 1GiB\n", field: "", line: 5, message: "invalid YAML" },
  { title: "tab used for indentation", text: "name: demo\ncommand: [x]\nresources:\n\tcpu: 1\n", field: "", line: 4, column: 1, message: "invalid YAML: Tabs are not allowed as indentation" },
  { title: "unterminated quoted string", text: "name: demo\ncommand: [x]\nenv: { A: \"open }\n", field: "", line: 4, message: "invalid YAML: Missing closing" },
  { title: "several YAML documents in one file", text: "name: a\ncommand: [x]\n---\nname: b\n", field: "", line: 3, column: 1, message: "multiple documents" },
  { title: "JSON with a missing comma", text: '{\n  "name": "demo"\n  "command": ["x"]\n}\n', field: "", line: 3, column: 3, message: "invalid JSON" },
  { title: "JSON with single quotes (by file name)", text: "{\n  'name': 'demo',\n  'command': ['x']\n}\n", field: "", line: 2, column: 3, message: "invalid JSON", opts: { source: "demo.json" } },
  { title: "truncated JSON", text: '{\n  "name": "demo",\n  "command": ["x"\n', field: "", line: 4, message: "invalid JSON", opts: { format: "json" } },
];

describe("malformed files: field, line, column and message", () => {
  test("the table covers at least 40 distinct mistakes", () => {
    assert.ok(malformed.length >= 40, `only ${malformed.length} cases`);
    assert.equal(new Set(malformed.map((m) => m.title)).size, malformed.length, "titles are unique");
  });

  for (const m of malformed) {
    test(m.title, () => {
      const issues = issuesOf(m.text, m.opts);
      const issue = issues.find((i) => i.field === m.field && i.message.includes(m.message));
      assert.ok(issue, `no issue for field "${m.field}" containing ${JSON.stringify(m.message)}; got:\n${JSON.stringify(issues, null, 2)}`);
      assert.equal(issue.line, m.line, `line of ${JSON.stringify(issue)}`);
      if (m.column !== undefined) assert.equal(issue.column, m.column, `column of ${JSON.stringify(issue)}`);
      // Every file in the table has exactly one mistake, so exactly one issue is expected.
      assert.equal(issues.length, 1, `expected one issue, got:\n${JSON.stringify(issues, null, 2)}`);
    });
  }
});

describe("disconnect", () => {
  const job = "name: web\ncommand: [/bin/sleep, '60']\n";

  test("keepRunning: true keeps the job running when its agent is cut off", () => {
    assert.deepEqual(parseTaskFile(`${job}disconnect: { keepRunning: true }\n`).disconnect, { keepRunning: true });
  });

  test("absent, the job's tasks stop when cut off (no field in the spec)", () => {
    assert.equal(parseTaskFile(job).disconnect, undefined);
    assert.deepEqual(parseTaskFile(`${job}disconnect: {}\n`).disconnect, { keepRunning: false });
  });

  test("keepRunning must be a boolean, and no other key is known", () => {
    assert.match(issuesOf(`${job}disconnect: { keepRunning: "yes" }\n`)[0]!.message, /not a boolean/);
    assert.equal(issuesOf(`${job}disconnect: { keepRuning: true }\n`)[0]!.field, "disconnect.keepRuning");
  });
});
