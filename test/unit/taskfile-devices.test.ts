import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { InputIssue } from "../../src/common/errors.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import { issuesOf } from "../harness/taskfile-issues.js";

const head = "name: train\ncommand: [bin/train]\n";


describe("resources.devices in a task file", () => {
  test("names a device, a count (default 1) and constraints on the instance's attributes", () => {
    const spec = parseTaskFile(`${head}resources:\n  cpu: 2\n  devices:\n    - { name: nvidia/gpu, count: 2, constraints: [{ attribute: model, operator: regexp, value: A100 }] }\n    - name: example/fpga\n`);
    assert.deepEqual(spec.resources.devices, [
      { name: "nvidia/gpu", count: 2, constraints: [{ attribute: "model", operator: "regexp", value: "A100" }] },
      { name: "example/fpga", count: 1, constraints: [] },
    ]);
    assert.equal(spec.resources.cpu, 2);
  });

  test("absent or empty: the job asks for no devices", () => {
    assert.equal(parseTaskFile(head).resources.devices, undefined);
    assert.equal(parseTaskFile(`${head}resources: { devices: [] }\n`).resources.devices, undefined);
  });

  const cases: { title: string; text: string; field: string; line: number; message: RegExp }[] = [
    { title: "a name that is not vendor/type", text: `${head}resources:\n  devices:\n    - { name: gpu }\n`, field: "resources.devices[0].name", line: 5, message: /"gpu" is not a device name: write vendor\/type, e\.g\. nvidia\/gpu/ },
    { title: "a missing name", text: `${head}resources:\n  devices:\n    - { count: 1 }\n`, field: "resources.devices[0].name", line: 5, message: /is required/ },
    { title: "a count of 0", text: `${head}resources:\n  devices:\n    - name: nvidia/gpu\n      count: 0\n`, field: "resources.devices[0].count", line: 6, message: /must be from 1 to 64, got 0/ },
    { title: "a count that is not a number", text: `${head}resources:\n  devices:\n    - { name: nvidia/gpu, count: two }\n`, field: "resources.devices[0].count", line: 5, message: /must be an integer from 1 to 64/ },
    { title: "an unknown key", text: `${head}resources:\n  devices:\n    - { name: nvidia/gpu, cuont: 1 }\n`, field: "resources.devices[0].cuont", line: 5, message: /unknown key "cuont" \(did you mean "count"\?\)/ },
    { title: "a bad constraint operator", text: `${head}resources:\n  devices:\n    - name: nvidia/gpu\n      constraints: [{ attribute: memory, operator: ">=", value: 40GiB }]\n`, field: "resources.devices[0].constraints[0].operator", line: 6, message: /">=" is not one of "=", "!=", "in", "regexp"/ },
    { title: "an invalid pattern", text: `${head}resources:\n  devices:\n    - name: nvidia/gpu\n      constraints: [{ attribute: model, operator: regexp, value: "A100(" }]\n`, field: "resources.devices[0].constraints[0].value", line: 6, message: /is not a valid regular expression/ },
    { title: "not a list", text: `${head}resources:\n  devices: nvidia/gpu\n`, field: "resources.devices", line: 4, message: /must be a list, e\.g\. \[\{ name: nvidia\/gpu, count: 1 \}\]/ },
    { title: "an unknown strategy", text: `${head}placement: { strategy: fragmented }\n`, field: "placement.strategy", line: 3, message: /"fragmented" is not one of "binpack", "spread", "fragmentation" \(did you mean "fragmentation"\?\)/ },
  ];
  for (const c of cases) {
    test(`refuses ${c.title}, with its field and line`, () => {
      const issues = issuesOf(c.text);
      assert.equal(issues.length, 1, JSON.stringify(issues));
      const [issue] = issues as [InputIssue];
      assert.equal(issue.field, c.field);
      assert.equal(issue.line, c.line);
      assert.match(issue.message, c.message);
    });
  }

  test("placement.strategy fragmentation is accepted; without a strategy the cell decides", () => {
    assert.deepEqual(parseTaskFile(`${head}placement: { strategy: fragmentation }\n`).placement, { strategy: "fragmentation" });
    assert.deepEqual(parseTaskFile(head).placement, {});
  });
});
