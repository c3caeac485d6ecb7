/** Diffs of job versions: which fields changed, in place or not, and what happens to each instance. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import type { TaskInstance } from "../../src/common/types.js";
import { diffSpecs, planInstances } from "../../src/manager/versions/diff.js";

const spec = (extra = "") => parseTaskFile(`name: web\ncommand: [/bin/web]\nenv: { GREETING: hi }\ninstances: 3\n${extra}`);

function task(index: number, state: TaskInstance["state"] = "running", desired: TaskInstance["desired"] = "run"): TaskInstance {
  return { id: `web/${index}`, jobId: "web", index, run: 0, desired, state, attempt: 1, restartsOnNode: 0, migrations: 0, createdAt: 0, updatedAt: 0, events: [] };
}

describe("diffs of versions", () => {
  test("the same spec is identical", () => {
    const d = diffSpecs({ spec: spec() }, { spec: spec() });
    assert.deepEqual(d, { identical: true, fields: [], replaces: false });
  });

  test("an environment value changes: one field, instances replaced", () => {
    const d = diffSpecs({ spec: spec() }, { spec: parseTaskFile("name: web\ncommand: [/bin/web]\nenv: { GREETING: hello }\ninstances: 3\n") });
    assert.deepEqual(d.fields, [{ field: "env.GREETING", from: "hi", to: "hello", inPlace: false }]);
    assert.equal(d.replaces, true);
  });

  test("instances, restart, notify and update change in place", () => {
    const d = diffSpecs({ spec: spec() }, { spec: parseTaskFile("name: web\ncommand: [/bin/web]\nenv: { GREETING: hi }\ninstances: 5\nrestart: { attempts: 9 }\nupdate: { maxParallel: 2 }\n") });
    assert.equal(d.replaces, false);
    assert.ok(d.fields.every((f) => f.inPlace));
    assert.deepEqual(d.fields.map((f) => f.field).sort(), ["instances", "restart.attempts", "update"]);
  });

  test("a new package digest replaces instances", () => {
    const d = diffSpecs({ spec: spec(), packageDigest: "sha256:aa" }, { spec: spec(), packageDigest: "sha256:bb" });
    assert.deepEqual(d.fields, [{ field: "packageDigest", from: "sha256:aa", to: "sha256:bb", inPlace: false }]);
  });

  test("what happens to each instance: replaced, or updated in place; added in free slots; the highest removed", () => {
    const tasks = [task(0), task(1), task(2, "killed", "stop"), task(3)];
    const replace = diffSpecs({ spec: spec() }, { spec: spec("resources: { cpu: 1 }\n") });
    assert.deepEqual(planInstances("web", tasks, replace, 4), { replaced: ["web/0", "web/1", "web/3"], updatedInPlace: [], added: ["web/2"], removed: [] });
    const shrink = diffSpecs({ spec: spec() }, { spec: parseTaskFile("name: web\ncommand: [/bin/web]\nenv: { GREETING: hi }\ninstances: 2\n") });
    assert.deepEqual(planInstances("web", tasks, shrink, 2), { replaced: [], updatedInPlace: ["web/0", "web/1"], added: [], removed: ["web/3"] });
  });
});
