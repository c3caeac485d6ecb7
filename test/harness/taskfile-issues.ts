import assert from "node:assert/strict";
import { ValidationError, type InputIssue } from "../../src/common/errors.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";

/** The issues of a task file that must be rejected (fails the test when it is accepted or fails otherwise). */
export function issuesOf(text: string, opts: { source?: string; format?: "yaml" | "json" } = {}): InputIssue[] {
  try {
    parseTaskFile(text, opts);
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${String(e)}`);
    return e.issues;
  }
  assert.fail(`expected the file to be rejected:\n${text}`);
}
