/**
 * `alloc:` in task files (docs/allocs.md, docs/task-file.md): the members and
 * what the job becomes (its resources and ports are the alloc's), and each
 * mistake reported with its field and line.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import { TaskDispatchSchema } from "../../src/common/protocol.js";
import { issuesOf } from "../harness/taskfile-issues.js";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;


const CONTRACT = `name: web
alloc:
  resources: { cpu: 2, memory: 2GiB }
  tasks:
    - { name: app, command: ["bin/app"], ports: [{ name: http }] }
    - { name: sidecar, command: ["bin/proxy"], resources: { memory: 256MiB } }
`;

describe("task file: alloc", () => {
  test("the contract's example: the members, with the job's resources and ports taken from the alloc", () => {
    const spec = parseTaskFile(CONTRACT);
    assert.deepEqual(spec.alloc, {
      tasks: [
        { name: "app", command: ["bin/app"], env: {}, ports: ["http"] },
        { name: "sidecar", command: ["bin/proxy"], env: {}, ports: [], resources: { memory: 256 * MiB } },
      ],
    });
    assert.deepEqual(spec.resources, { cpu: 2, memory: 2 * GiB, disk: 256 * MiB }, "the scheduler places the alloc's resources");
    assert.deepEqual(spec.ports, [{ name: "http" }], "the job's ports are the union of its tasks'");
    assert.deepEqual(spec.command, []);
    assert.equal(spec.isolation, "process", "allocs run under the process driver");
  });

  test("a service alloc registers the ports its tasks declare; a member's env adds to the job's", () => {
    const spec = parseTaskFile(`name: api
service: { name: api }
env: { MODE: prod }
alloc:
  resources: { cpu: 1, memory: 512MiB }
  tasks:
    - { name: app, command: [bin/app], env: { ROLE: app }, ports: [{ name: http, check: { type: tcp } }] }
    - { name: metrics, command: [bin/exporter], ports: [{ name: prom, static: 9100 }] }
`);
    assert.deepEqual(spec.service, { name: "api" });
    assert.deepEqual(spec.ports.map((p) => p.name), ["http", "prom"]);
    assert.equal(spec.ports[1]!.static, 9100);
    assert.deepEqual(spec.alloc!.tasks[0]!.env, { ROLE: "app" });
    assert.deepEqual(spec.env, { MODE: "prod" });
  });

  test("config/examples/alloc.yaml parses: two tasks, the shipper capped, the app's port the job's", () => {
    const spec = parseTaskFile(readFileSync(new URL("../../../config/examples/alloc.yaml", import.meta.url), "utf8"));
    assert.deepEqual(spec.alloc!.tasks.map((m) => [m.name, m.resources?.memory]), [["app", undefined], ["shipper", 32 * MiB]]);
    assert.deepEqual(spec.ports.map((p) => p.name), ["http"]);
    assert.equal(spec.resources.memory, 256 * MiB);
  });

  test("the dispatch of an alloc passes the agents' check without a command of its own; a plain task still needs one", () => {
    const spec = parseTaskFile(CONTRACT);
    const dispatch = { epoch: 1, taskId: "web/0", jobId: "web", index: 0, attempt: 1, spec };
    assert.equal(TaskDispatchSchema.safeParse(dispatch).success, true);
    const plain = { ...dispatch, spec: { ...spec, alloc: undefined } };
    assert.equal(TaskDispatchSchema.safeParse(plain).success, false);
  });

  const cases: { what: string; file: string; field: string; line: number; message: RegExp }[] = [
    {
      what: "a task name used twice",
      file: `name: a\nalloc:\n  resources: { memory: 1GiB }\n  tasks:\n    - { name: app, command: [x] }\n    - { name: app, command: [y] }\n`,
      field: "alloc.tasks[1].name",
      line: 6,
      message: /duplicate task name "app" \(also used by alloc.tasks\[0\]\)/,
    },
    {
      what: "a task's memory cap above the alloc's",
      file: `name: a\nalloc:\n  resources: { memory: 1GiB }\n  tasks:\n    - name: app\n      command: [x]\n      resources: { memory: 2GiB }\n`,
      field: "alloc.tasks[0].resources.memory",
      line: 7,
      message: /2(\.0)?GiB is above the alloc.s 1(\.0)?GiB/,
    },
    {
      what: "a task's cpu cap above the alloc's",
      file: `name: a\nalloc:\n  resources: { cpu: 1 }\n  tasks:\n    - { name: app, command: [x], resources: { cpu: 2 } }\n`,
      field: "alloc.tasks[0].resources.cpu",
      line: 5,
      message: /2 cores is above the alloc's 1/,
    },
    {
      what: "alloc together with a top-level command",
      file: `name: a\ncommand: [x]\nalloc:\n  resources: { memory: 1GiB }\n  tasks: [{ name: app, command: [x] }]\n`,
      field: "command",
      line: 2,
      message: /is not used together with alloc: give it per task under alloc.tasks/,
    },
    {
      what: "alloc together with top-level resources",
      file: `name: a\nresources: { memory: 1GiB }\nalloc:\n  resources: { memory: 1GiB }\n  tasks: [{ name: app, command: [x] }]\n`,
      field: "resources",
      line: 2,
      message: /alloc.resources is what the tasks share/,
    },
    {
      what: "alloc under lxc",
      file: `name: a\nisolation: lxc\nalloc:\n  resources: { memory: 1GiB }\n  tasks: [{ name: app, command: [x] }]\n`,
      field: "isolation",
      line: 2,
      message: /allocs run under the process driver only/,
    },
    {
      what: "a port name declared by two tasks",
      file: `name: a\nalloc:\n  resources: { memory: 1GiB }\n  tasks:\n    - { name: app, command: [x], ports: [{ name: http }] }\n    - { name: side, command: [y], ports: [{ name: http }] }\n`,
      field: "alloc.tasks[1].ports[0].name",
      line: 6,
      message: /port "http" is already declared by alloc task "app"/,
    },
    {
      what: "a task without a command",
      file: `name: a\nalloc:\n  resources: { memory: 1GiB }\n  tasks:\n    - { name: app }\n`,
      field: "alloc.tasks[0].command",
      line: 5,
      message: /is required/,
    },
    {
      what: "no tasks",
      file: `name: a\nalloc:\n  resources: { memory: 1GiB }\n  tasks: []\n`,
      field: "alloc.tasks",
      line: 4,
      message: /must list at least one task/,
    },
    {
      what: "an unknown key in a task",
      file: `name: a\nalloc:\n  resources: { memory: 1GiB }\n  tasks:\n    - { name: app, command: [x], comand: [y] }\n`,
      field: "alloc.tasks[0].comand",
      line: 5,
      message: /unknown key "comand" \(did you mean "command"\?\)/,
    },
    {
      what: "a task name that cannot name a cgroup",
      file: `name: a\nalloc:\n  resources: { memory: 1GiB }\n  tasks:\n    - { name: App_1, command: [x] }\n`,
      field: "alloc.tasks[0].name",
      line: 5,
      message: /"App_1" is not a valid task name/,
    },
  ];
  for (const k of cases) {
    test(`rejected with field and line: ${k.what}`, () => {
      const issues = issuesOf(k.file);
      const hit = issues.find((i) => i.field === k.field);
      assert.ok(hit, `no issue at ${k.field}: ${JSON.stringify(issues)}`);
      assert.equal(hit.line, k.line, JSON.stringify(hit));
      assert.match(hit.message, k.message);
    });
  }
});
