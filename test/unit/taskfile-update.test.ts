/** The task file's `update:` block: defaults, the example, and the rules. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ValidationError } from "../../src/common/errors.js";
import { parseTaskFile, TASKFILE_DEFAULTS } from "../../src/common/taskfile/index.js";

const base = "name: web\ncommand: [/bin/web]\n";

function issues(text: string): string[] {
  try {
    parseTaskFile(text);
  } catch (e) {
    if (e instanceof ValidationError) return e.issues.map((i) => `${i.field}: ${i.message}`);
    throw e;
  }
  assert.fail("expected a validation error");
}

describe("the update: block", () => {
  test("absent: the spec has none (deployments use the defaults)", () => {
    assert.equal(parseTaskFile(base).update, undefined);
  });

  test("empty keys take the defaults: maxParallel 1, no surge, 10s healthy, 5m/10m deadlines, 2s drain", () => {
    assert.deepEqual(parseTaskFile(`${base}update: { maxParallel: 1 }\n`).update, TASKFILE_DEFAULTS.update);
    assert.deepEqual(TASKFILE_DEFAULTS.update, {
      maxParallel: 1, maxSurge: 0, minHealthyTimeMs: 10_000, healthyDeadlineMs: 300_000, progressDeadlineMs: 600_000,
      canary: 0, autoPromote: false, autoRevert: false, drainDelayMs: 2000, staggerMs: 0,
    });
  });

  test("every key, with durations in units", () => {
    const u = parseTaskFile(`${base}update: { maxParallel: 2, maxSurge: 1, minHealthyTime: 1s, healthyDeadline: 30s, progressDeadline: 1m, canary: 1, autoPromote: true, autoRevert: true, drainDelay: 500ms, stagger: 5s }\n`).update;
    assert.deepEqual(u, { maxParallel: 2, maxSurge: 1, minHealthyTimeMs: 1000, healthyDeadlineMs: 30_000, progressDeadlineMs: 60_000, canary: 1, autoPromote: true, autoRevert: true, drainDelayMs: 500, staggerMs: 5000 });
  });

  test("config/examples/service-update.yaml parses, with a surge instance and autoRevert", () => {
    const text = readFileSync(new URL("../../../config/examples/service-update.yaml", import.meta.url), "utf8");
    const spec = parseTaskFile(text);
    assert.equal(spec.update?.maxSurge, 1);
    assert.equal(spec.update?.autoRevert, true);
  });

  test("refused: a zero maxParallel, a deadline not above minHealthyTime, a non-boolean, an unknown key", () => {
    assert.deepEqual(issues(`${base}update: { maxParallel: 0 }\n`).length, 1);
    assert.match(issues(`${base}update: { minHealthyTime: 1m, healthyDeadline: 30s }\n`).join(), /healthyDeadline: must be longer than minHealthyTime/);
    assert.match(issues(`${base}update: { healthyDeadline: 20m }\n`).join(), /progressDeadline: must be at least healthyDeadline/);
    assert.match(issues(`${base}update: { autoRevert: yes please }\n`).join(), /autoRevert: .*not a boolean/);
    assert.match(issues(`${base}update: { maxParalel: 2 }\n`).join(), /maxParallel/);
  });
});
