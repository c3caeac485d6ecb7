/**
 * Task files parsed off the event loop (src/common/taskfile/off-thread.ts):
 * the caller cannot tell the answer from parseTaskFile's, and the event loop
 * keeps running while a large file is parsed.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ValidationError } from "../../src/common/errors.js";
import { parseTaskFile, type ParseTaskFileOptions } from "../../src/common/taskfile/index.js";
import { INLINE_BELOW, parseTaskFileOffThread } from "../../src/common/taskfile/off-thread.js";

// Compiled to dist/test/unit/, so the repository root is three levels up.
const examplesDir = new URL("../../../config/examples/", import.meta.url);
const example = (name: string): string => readFileSync(new URL(name, examplesDir), "utf8");

/** Just under the manager's 256 KiB body limit: a YAML file of about 5,000 env keys. */
function manyEnvKeys(badKey = false): string {
  const lines = ["name: big-env", 'command: ["/bin/true"]', "env:"];
  for (let i = 0; lines.join("\n").length < 250 * 1024; i++) lines.push(`  VAR_${i}: "value number ${i} padded to make it longer"`);
  if (badKey) lines.push('  "1-not-a-name": x');
  return lines.join("\n") + "\n";
}

/** A JSON file whose command has 20,000 elements. */
function longCommand(): string {
  return JSON.stringify({ name: "long-command", command: ["/bin/echo", ...Array.from({ length: 20_000 }, (_, i) => `argument-${i}`)] });
}

/** Whatever parseTaskFile gives or throws, as a value to compare. */
async function outcome(parse: () => unknown): Promise<{ spec: unknown } | { error: unknown }> {
  try {
    return { spec: await parse() };
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${String(e)}`);
    return { error: { code: e.code, status: e.status, exitCode: e.exitCode, message: e.message, issues: e.issues, context: e.context, wire: e.toJSON() } };
  }
}

/** Parses `text` both ways, the off-thread one forced through a worker, and requires the same outcome. */
async function sameBothWays(text: string, opts: ParseTaskFileOptions = {}): Promise<{ spec: unknown } | { error: unknown }> {
  const inline = await outcome(() => parseTaskFile(text, opts));
  const offThread = await outcome(() => parseTaskFileOffThread(text, opts, { inlineBelow: 0 }));
  assert.deepEqual(offThread, inline);
  return inline;
}

describe("a task file parsed off the event loop", () => {
  test("gives the spec parseTaskFile gives, for every example and for large files", async () => {
    for (const name of ["hello.yaml", "cron.yaml", "service.yaml", "sleep.yaml"]) {
      assert.ok("spec" in (await sameBothWays(example(name), { source: name })), name);
    }
    assert.ok("spec" in (await sameBothWays('{"name": "j", "command": ["/bin/true"], "instances": 3}', { format: "json" })));
    assert.ok("spec" in (await sameBothWays(manyEnvKeys(), { source: "task description" })));
    assert.ok("spec" in (await sameBothWays(longCommand(), { format: "json", source: "task description" })));
  });

  test("throws the ValidationError parseTaskFile throws: code, field, line, column and message", async () => {
    const rejected = [
      "name: j\ncommand: [/bin/true\n", // YAML syntax
      '{"name": "j", "command": [}', // JSON syntax
      "name: j\ncomand: [/bin/true]\n", // unknown key, with a suggestion
      "name: j\ninstances: -1\ncommand: [/bin/true]\nresources: {memory: lots}\n", // several issues
      "", // empty
      manyEnvKeys(true), // a large file with an issue on its last line
    ];
    for (const text of rejected) {
      const result = await sameBothWays(text, { source: "task description" });
      assert.ok("error" in result, `expected a rejection of ${text.slice(0, 40)}`);
    }
  });

  test("keeps the event loop turning while a large file is parsed", async () => {
    const text = manyEnvKeys();
    assert.ok(text.length >= INLINE_BELOW);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    try {
      const spec = await parseTaskFileOffThread(text, { source: "task description" });
      assert.ok(ticks > 0, "the interval never ran while the file was parsed");
      assert.deepEqual(spec, parseTaskFile(text, { source: "task description" }));
    } finally {
      clearInterval(ticker);
    }
  });

  test("a parse past its deadline is refused as invalid input, and the next parse gets a fresh worker", async () => {
    const text = longCommand();
    await assert.rejects(parseTaskFileOffThread(text, { source: "task description" }, { deadlineMs: 1 }), (e) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.status, 400);
      assert.match(e.message, /^task description: took longer than 0.001 s to parse/);
      return true;
    });
    assert.deepEqual(await parseTaskFileOffThread(text, { source: "task description" }), parseTaskFile(text, { source: "task description" }));
  });

  test("parses concurrent files each to its own answer", async () => {
    const texts = [example("hello.yaml"), longCommand(), "name: j\ncomand: [/bin/true]\n", example("service.yaml"), manyEnvKeys()];
    const answers = await Promise.all(texts.map((t) => outcome(() => parseTaskFileOffThread(t, {}, { inlineBelow: 0 }))));
    for (const [i, text] of texts.entries()) assert.deepEqual(answers[i], await outcome(() => parseTaskFile(text)));
  });
});
