import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ValidationError } from "../../src/common/errors.js";
import { findCycle, layersOf } from "../../src/manager/workflow/graph.js";
import { jobPathsOf, parseWorkflow } from "../../src/manager/workflow/parse.js";

/** The issues of a file that must be refused, as "line: field: message". */
function issuesOf(text: string, files?: Record<string, string>): { line?: number; field: string; message: string }[] {
  try {
    parseWorkflow(text, { source: "wf.yaml", ...(files ? { files } : {}) });
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e));
    return e.issues;
  }
  assert.fail("the workflow was accepted");
}

const DIAMOND = `workflow: diamond
namespace: team-a
throttle: 2
vars: { DATE: "2026-12-04", VERSION: 1.10 }
nodes:
  - name: a
    job: { command: ["true"] }
  - name: b
    after: [a]
    job: jobs/b.yaml
  - name: c
    after: [a]
    retry: 2
    pre: ["bin/check"]
    post: ["bin/verify"]
    job: { command: ["true"], env: { DATE: "mine" } }
  - name: d
    after: [b, c]
    when: any
    job: { command: ["true"], restart: { attempts: 2 } }
`;

describe("workflow files", () => {
  test("a diamond with a job file, vars, PRE/POST, retry and throttle is read as written", () => {
    const wf = parseWorkflow(DIAMOND, { files: { "jobs/b.yaml": "command: [bin/b]\nresources: { memory: 128MiB }\n" } });
    assert.equal(wf.name, "diamond");
    assert.equal(wf.namespace, "team-a");
    assert.equal(wf.throttle, 2);
    assert.deepEqual(wf.vars, { DATE: "2026-12-04", VERSION: "1.10" });
    assert.deepEqual(wf.nodes.map((n) => [n.name, n.after, n.when, n.retry]), [["a", [], "ok", 0], ["b", ["a"], "ok", 0], ["c", ["a"], "ok", 2], ["d", ["b", "c"], "any", 0]]);
    const [a, b, c, d] = wf.nodes;
    assert.equal(a!.job.name, "diamond.a");
    assert.equal(a!.job.namespace, "team-a");
    assert.equal(a!.job.type, "batch", "a node's job is batch unless it says otherwise");
    assert.equal(a!.job.restart.attempts, 0, "a node's job does not restart on its own (retry reruns the node)");
    assert.equal(d!.job.restart.attempts, 2, "unless its task description asks to");
    assert.deepEqual(b!.job.command, ["bin/b"]);
    assert.equal(b!.job.resources.memory, 128 * 1024 ** 2);
    assert.deepEqual(c!.pre, ["bin/check"]);
    assert.deepEqual(c!.post, ["bin/verify"]);
    assert.equal(a!.job.env.DATE, "2026-12-04", "vars reach every node's tasks as environment");
    assert.equal(c!.job.env.DATE, "mine", "the job's own env wins over vars");
  });

  test("the task-file paths are listed for the CLI to send", () => {
    assert.deepEqual(jobPathsOf(DIAMOND), ["jobs/b.yaml"]);
    assert.deepEqual(jobPathsOf("{{{"), []);
  });

  test("a duplicate node name names the node and its line", () => {
    const issues = issuesOf(`workflow: w\nnodes:\n  - name: a\n    job: { command: [x] }\n  - name: a\n    job: { command: [x] }\n`);
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.line, 5);
    assert.equal(issues[0]!.field, "nodes[1].name");
    assert.match(issues[0]!.message, /duplicate node name "a"/);
  });

  test("an unknown node in after names the node, the line and the likely name", () => {
    const issues = issuesOf(`workflow: w\nnodes:\n  - name: fetch\n    job: { command: [x] }\n  - name: train\n    after: [fetch, fetc]\n    job: { command: [x] }\n`);
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.line, 6);
    assert.equal(issues[0]!.field, "nodes[1].after[1]");
    assert.match(issues[0]!.message, /node "train" runs after "fetc", which is not a node of this workflow \(did you mean "fetch"\?\)/);
  });

  test("a cycle is reported once, with the path around it and the line of a node in it", () => {
    const issues = issuesOf(`workflow: w\nnodes:\n  - name: a\n    job: { command: [x] }\n  - name: b\n    after: [a, d]\n    job: { command: [x] }\n  - name: c\n    after: [b]\n    job: { command: [x] }\n  - name: d\n    after: [c]\n    job: { command: [x] }\n`);
    assert.equal(issues.length, 1);
    assert.match(issues[0]!.message, /is in a cycle: (b → c → d → b|c → d → b → c|d → b → c → d)/);
    assert.ok([6, 9, 12].includes(issues[0]!.line!), `line ${issues[0]!.line}`);
  });

  test("a node after itself is refused", () => {
    const issues = issuesOf(`workflow: w\nnodes:\n  - name: a\n    after: [a]\n    job: { command: [x] }\n`);
    assert.deepEqual(issues.map((i) => [i.line, i.message]), [[4, `node "a" cannot run after itself`]]);
  });

  test("every problem of one file is reported in one pass, in line order", () => {
    const issues = issuesOf(`workflow: Bad_Name\nthrotle: 2\nnodes:\n  - name: a\n    when: sometimes\n    job: { command: [x], instances: many }\n  - name: b\n    retry: -1\n    job: 7\n`);
    assert.deepEqual(
      issues.map((i) => [i.line, i.field]),
      [[1, "workflow"], [2, "throtle"], [5, "nodes[0].when"], [6, "nodes[0].job.instances"], [8, "nodes[1].retry"], [9, "nodes[1].job"]],
    );
  });

  test("errors inside a job file name the file and its line", () => {
    const issues = issuesOf(`workflow: w\nnodes:\n  - name: a\n    job: jobs/a.yaml\n`, { "jobs/a.yaml": "command: [x]\ninstances: zero\n" });
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.line, 4);
    assert.match(issues[0]!.message, /node "a": jobs\/a\.yaml:2:12: instances/);
  });

  test("a job file that was not sent is refused", () => {
    const issues = issuesOf(`workflow: w\nnodes:\n  - name: a\n    job: jobs/a.yaml\n`);
    assert.match(issues[0]!.message, /task file "jobs\/a\.yaml" was not sent/);
  });

  test("a service, a schedule or another namespace cannot be a node's job", () => {
    const issues = issuesOf(`workflow: w\nnodes:\n  - name: a\n    job: { type: service, command: [x] }\n  - name: b\n    job: { command: [x], schedule: "* * * * *" }\n  - name: c\n    job: { command: [x], namespace: other }\n`);
    assert.deepEqual(issues.map((i) => i.line), [4, 6, 8]);
    assert.match(issues[0]!.message, /batch job/);
    assert.match(issues[1]!.message, /no schedule/);
    assert.match(issues[2]!.message, /namespace "other"/);
  });

  test("missing keys and empty workflows point at the mapping", () => {
    assert.deepEqual(issuesOf(`workflow: w\nnodes: []\n`).map((i) => [i.line, i.field]), [[2, "nodes"]]);
    assert.deepEqual(issuesOf(`workflow: w\nnodes:\n  - name: a\n`).map((i) => [i.line, i.field, i.message]), [[3, "nodes[0].job", "is required"]]);
    assert.match(issuesOf(`- a\n`)[0]!.message, /mapping/);
  });

  test("a syntax error carries its line", () => {
    assert.equal(issuesOf(`workflow: w\nnodes:\n  - name: [a\n`)[0]!.line! >= 3, true);
  });
});

describe("workflow graphs", () => {
  test("layers count the longest way from a root", () => {
    const layers = layersOf([{ name: "a", after: [] }, { name: "b", after: ["a"] }, { name: "c", after: ["a", "b"] }, { name: "d", after: [] }]);
    assert.deepEqual(Object.fromEntries(layers), { a: 0, b: 1, c: 2, d: 0 });
  });

  test("a long chain is walked without recursion", () => {
    const chain = Array.from({ length: 20_000 }, (_, i) => ({ name: `n${i}`, after: i ? [`n${i - 1}`] : [] }));
    assert.equal(findCycle(chain), undefined);
    assert.equal(layersOf(chain).get("n19999"), 19_999);
    chain[0] = { name: "n0", after: ["n19999"] };
    assert.equal(findCycle(chain)?.length, 20_001);
  });
});

describe("the example in config/examples/workflows", () => {
  test("diamond.yaml is a valid diamond with a task file, PRE, POST, retry, when: any and a throttle", () => {
    const dir = new URL("../../../config/examples/workflows/", import.meta.url);
    const text = readFileSync(new URL("diamond.yaml", dir), "utf8");
    const files = Object.fromEntries(jobPathsOf(text).map((p) => [p, readFileSync(new URL(p, dir), "utf8")]));
    const wf = parseWorkflow(text, { source: "diamond.yaml", files });
    assert.deepEqual(wf.nodes.map((n) => [n.name, n.after]), [["fetch", []], ["left", ["fetch"]], ["right", ["fetch"]], ["merge", ["left", "right"]], ["cleanup", ["merge"]]]);
    assert.equal(wf.throttle, 2);
    assert.equal(wf.nodes[3]!.job.name, "diamond.merge");
    assert.ok(wf.nodes[2]!.pre && wf.nodes[3]!.post);
  });
});
