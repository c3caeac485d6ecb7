/**
 * Task description files: YAML or JSON text in, a validated JobSpec with
 * normalized units out. The reference for users, with every default and rule,
 * is docs/task-file.md.
 *
 * The validator is hand-written rather than a zod schema because the contract
 * asks for things zod makes awkward: every issue collected in one pass
 * (including cross-field rules even when other fields are broken), messages in
 * our own words, "did you mean" for unknown keys, and issues anchored on the
 * key (unknown/reserved keys), the value, or the parent mapping (missing keys)
 * so that line numbers point where the user has to edit.
 *
 * The modules of this folder, in the order a file meets them: format.ts picks
 * JSON or YAML; yaml-hardening.ts parses YAML within limits; rules/ (written in
 * the vocabulary of checks.ts) checks every field, with the allowed keys of
 * each mapping in one table, schema.ts SCHEMA_KEYS; issues.ts and
 * yaml-positions.ts turn what the rules found into one ValidationError with
 * lines and columns. Both entry points share the rules, so a file and an
 * already-parsed object obey exactly the same rules.
 */
import { ValidationError, type InputIssue } from "../errors.js";
import type { JobSpec } from "../types.js";
import { sniffFormat, type ParseTaskFileOptions } from "./format.js";
import { finish, formatPath, type RawIssue } from "./issues.js";
import { checkDocument } from "./rules/job.js";
import { hardenedValue, parseYaml } from "./yaml-hardening.js";
import { locate, plainScalarSource } from "./yaml-positions.js";

export { checkCron } from "./cron.js";
export type { ParseTaskFileOptions } from "./format.js";
export { formatPath } from "./issues.js";
export { PACKAGE_NAME_RE, PACKAGE_VERSION_RE } from "./rules/program.js";
export { SCHEMA_KEYS, TASKFILE_DEFAULTS } from "./schema.js";
export { suggest } from "./suggest.js";

/**
 * Parses and validates a task file. Throws ValidationError listing every issue
 * found, each with its field path and 1-based line/column, sorted by position.
 */
export function parseTaskFile(input: string, opts: ParseTaskFileOptions = {}): JobSpec {
  // Editors on some systems write a byte-order mark; JSON.parse rejects it, YAML ignores it.
  const text = input.replace(/^\uFEFF/, "");
  const { explicitJson, jsonValue } = sniffFormat(text, opts);
  const parsed = parseYaml(text, explicitJson ? "JSON" : "YAML", opts.source);
  if (parsed.syntax) {
    if (!jsonValue) throw new ValidationError([parsed.syntax], opts.source);
    // Valid JSON that our YAML parser rejects (rare corner cases): validate it without positions.
    return finish(checkDocument(jsonValue.value, () => undefined), [], undefined, opts.source);
  }
  const { doc, lc } = parsed;
  if (doc.contents === null) {
    throw new ValidationError([{ field: "", message: "the file is empty: a task file is a mapping with at least name and command", line: 1, column: 1 }], opts.source);
  }
  const { value, issues } = hardenedValue(parsed, opts.source);
  const located = (raw: RawIssue): InputIssue => {
    const pos = locate(doc, lc, raw);
    return { field: formatPath(raw.path), message: raw.message, ...(pos ?? {}) };
  };
  const result = checkDocument(value, (path) => plainScalarSource(doc, path));
  return finish(result, issues, located, opts.source);
}

/** The same rules for an already-parsed object (e.g. an HTTP body); issues carry no line numbers. */
export function validateJobObject(obj: unknown): JobSpec {
  return finish(checkDocument(obj, () => undefined), [], undefined, undefined);
}
