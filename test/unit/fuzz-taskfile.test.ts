/**
 * Input fuzzing of the task-file parser (issue 8): thousands of generated
 * malformed files (test/harness/fuzz.ts), each invalid by construction, go
 * through parseTaskFile. Every one must be refused with the project's
 * ValidationError, never another exception, and the refusal must point where
 * the user has to edit: the exact field path the generator broke, with its
 * line, or (for files that are not even YAML/JSON) a line inside the file.
 *
 * The seed is printed; TORCA_FUZZ_SEED=<seed> replays a run, and
 * TORCA_FUZZ_CASE=<index> runs one case of it. TORCA_FUZZ_COUNT changes the
 * number of cases (default 10,000).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import { validatePackageRef } from "../../src/manager/packages/registry.js";
import { ValidationError } from "../../src/common/errors.js";
import { composeYaml } from "../../src/common/taskfile/yaml-hardening.js";
import { LineCounter } from "yaml";
import { judgeIssues, taskFileCase, validBases, type TaskFileCase } from "../harness/fuzz.js";
import { fuzzSeed } from "../harness/prng.js";

const seed = fuzzSeed();
const count = Number(process.env.TORCA_FUZZ_COUNT ?? 10_000);
const only = process.env.TORCA_FUZZ_CASE === undefined ? undefined : Number(process.env.TORCA_FUZZ_CASE);

/** A parse that takes this long is a hang, not slowness: it is orders of magnitude above the ~1 ms a file takes. */
const HANG_MS = 10_000;

/** What is wrong with how `c` was refused, or undefined when the refusal is right. */
function judge(c: TaskFileCase, thrown: unknown, source: string): string | undefined {
  if (thrown === undefined) return "accepted";
  if (!(thrown instanceof ValidationError)) return `threw ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)}`;
  return judgeIssues(c.text, c.expect, thrown.issues, thrown.message, source);
}

interface KindStats {
  cases: number;
  totalMs: number;
  maxMs: number;
}

describe("fuzzing: malformed task files through parseTaskFile", () => {
  test("every file the generator starts from is itself valid (so each mutation is the only mistake)", () => {
    for (const { name, job } of validBases()) {
      assert.doesNotThrow(() => parseTaskFile(JSON.stringify(job), { format: "json" }), `base ${name}`);
    }
  });

  test(`${count.toLocaleString("en-US")} generated malformed files are each refused with a ValidationError naming the field and line (seed ${seed})`, { timeout: 600_000 }, (t) => {
    t.diagnostic(`seed ${seed}: replay with TORCA_FUZZ_SEED=${seed} (one case: TORCA_FUZZ_CASE=<index>)`);
    const stats = new Map<string, KindStats>();
    const failures: string[] = [];
    let failed = 0;
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      if (only !== undefined && i !== only) continue;
      const c = taskFileCase(seed, i);
      const source = c.format === "json" ? "fuzz.json" : "fuzz.yaml";
      let thrown: unknown;
      const t0 = performance.now();
      try {
        parseTaskFile(c.text, { source, ...(c.format ? { format: c.format } : {}) });
      } catch (e) {
        thrown = e;
      }
      const ms = performance.now() - t0;
      const s = stats.get(c.kind) ?? { cases: 0, totalMs: 0, maxMs: 0 };
      s.cases++;
      s.totalMs += ms;
      s.maxMs = Math.max(s.maxMs, ms);
      stats.set(c.kind, s);
      const problem = ms > HANG_MS ? `took ${ms.toFixed(0)} ms` : judge(c, thrown, source);
      if (problem) {
        failed++;
        if (failures.length < 25) failures.push(`#${i} ${c.kind}: ${c.detail}\n    ${problem}\n    text: ${JSON.stringify(c.text.length > 300 ? c.text.slice(0, 300) + "..." : c.text)}`);
      }
    }
    const elapsed = performance.now() - started;
    const rows = [...stats].sort((a, b) => b[1].cases - a[1].cases);
    t.diagnostic(`${rows.reduce((n, [, s]) => n + s.cases, 0)} cases in ${(elapsed / 1000).toFixed(1)} s; per kind: cases, mean ms, max ms`);
    for (const [kind, s] of rows) t.diagnostic(`  ${kind.padEnd(18)} ${String(s.cases).padStart(5)}  ${(s.totalMs / s.cases).toFixed(2).padStart(7)}  ${s.maxMs.toFixed(1).padStart(8)}`);
    assert.equal(failed, 0, `${failed} of ${count} cases were not refused properly (seed ${seed}); first ones:\n${failures.join("\n")}`);
  });
});

/** The issues of a file that must be refused. */
function refusal(text: string, opts: { format?: "json" } = {}): ValidationError {
  try {
    parseTaskFile(text, opts);
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected the file to be refused:\n${text.slice(0, 300)}`);
}

const job = 'name: x\ncommand: ["/bin/true"]\n';

describe("fuzzing: what it found in the task-file parser, pinned down", () => {
  test("a duplicate key among 20,000 is still reported at its line (the library's own check compared every pair)", () => {
    const env = Array.from({ length: 20_000 }, (_, i) => `  V${i}: ${i}\n`).join("");
    const e = refusal(`${job}env:\n${env}  V7: again\n`);
    assert.deepEqual(e.issues.map((i) => [i.field, i.line]), [["env.V7", 20_004]]);
    assert.match(e.issues[0]!.message, /duplicate key "V7"/);
  });

  test("NUL characters in arguments and environment values are refused (exec cannot pass them)", () => {
    const e = refusal('name: x\ncommand: ["/bin/echo", "a\\0b"]\nenv: { A: "\\0" }\n');
    assert.deepEqual(e.issues.map((i) => i.field), ["command[1]", "env.A"]);
    assert.match(e.issues[0]!.message, /NUL/);
  });

  test("durations longer than a timer can wait are refused instead of firing at once", () => {
    const e = refusal(`${job}ports: [{ name: http, check: { type: tcp, interval: 25d } }]\nrestart: { delay: 1000000000000000 }\n`);
    assert.deepEqual(e.issues.map((i) => [i.field, i.message]), [
      ["ports[0].check.interval", 'must be at most 24d, got "25d"'],
      ["restart.delay", "must be at most 24d, got 1000000000000000"],
    ]);
    assert.doesNotThrow(() => parseTaskFile(`${job}restart: { delay: 24d }\n`));
  });

  test("service names are at most 253 characters, as naming and DNS require", () => {
    const label = "a".repeat(63);
    const name253 = [label, label, label, "a".repeat(61)].join(".");
    assert.equal(name253.length, 253);
    assert.doesNotThrow(() => parseTaskFile(`${job}ports: [{ name: http }]\nservice: { name: ${name253} }\n`));
    const e = refusal(`${job}ports: [{ name: http }]\nservice: { name: ${name253}a }\n`);
    assert.deepEqual(e.issues.map((i) => [i.field, i.message]), [["service.name", "is 254 characters long (at most 253, as in DNS)"]]);
  });

  test("a package must be one that can be pushed: no . or .. version, at most 128 characters each", () => {
    for (const ref of ["webapp@..", "webapp@.", `${"a".repeat(129)}@1.0`, `webapp@${"1".repeat(129)}`]) {
      const e = refusal(`${job}package: "${ref}"\n`);
      assert.deepEqual(e.issues.map((i) => i.field), ["package"], ref);
      const [name, version] = ref.split("@");
      assert.throws(() => validatePackageRef(name!, version!), ValidationError, `the registry refuses ${ref} as well`);
    }
    assert.doesNotThrow(() => parseTaskFile(`${job}package: "webapp@1..2"\n`));
  });

  test("a file cut off right after an escaped quote is refused (the YAML library read the string as closed)", () => {
    for (const text of [`${job}env: { A: "abc \\"`, `${job}env: { A: 'abc ''`, `name: "x\\"`]) {
      const e = refusal(text);
      assert.match(e.issues[0]!.message, /invalid YAML/);
      assert.equal(e.issues[0]!.line, text.split("\n").length, "on the last line of the text");
    }
  });

  test("nesting deeper than 32 levels is refused with its line, at any depth, never as a stack overflow", () => {
    for (const depth of [31, 1_000, 100_000]) {
      const e = refusal(`${job}env:\n  A: ${"[".repeat(depth)}${"]".repeat(depth)}\n`);
      assert.equal(e.issues.length, 1);
      assert.match(e.issues[0]!.message, /nested more than 32 levels deep/);
      assert.equal(e.issues[0]!.line, 4);
    }
    const json = refusal(`{"name":"x","command":["a"],"env":{"A":${"[".repeat(50_000)}${"]".repeat(50_000)}}}`, { format: "json" });
    assert.match(json.issues[0]!.message, /nested more than 32 levels deep/);
  });

  test("nesting too deep for the composer is refused from the parser's tokens, before the composer's recursion (whose stack overflow can abort the process)", () => {
    const shapes = {
      "flow sequences": (d: number) => `${"[".repeat(d)}${"]".repeat(d)}`,
      "flow mappings": (d: number) => `${"{a: ".repeat(d)}1${"}".repeat(d)}`,
      "block mappings": (d: number) => "\n" + Array.from({ length: d }, (_, i) => `${" ".repeat(i + 4)}k${i}:`).join("\n") + " leaf",
    };
    for (const [shape, nested] of Object.entries(shapes)) {
      for (const depth of [129, 3_000, 20_000]) {
        if (shape === "block mappings" && depth > 3_000) continue;
        const text = `${job}env:\n  A: ${nested(depth)}\n`;
        assert.throws(() => composeYaml(text, new LineCounter(), "deep.yaml"), (e: unknown) => {
          assert.ok(e instanceof ValidationError, `${shape} ${depth} deep: refused as invalid input`);
          assert.match(e.issues[0]!.message, /nested more than 32 levels deep/);
          assert.ok(e.issues[0]!.line! >= 4, `${shape} ${depth} deep: at a line inside the nesting`);
          return true;
        });
      }
    }
    // Within the composer's reach the tree is built, and the refusal names the field.
    const e = refusal(`${job}env:\n  A: ${shapes["flow mappings"](100)}\n`);
    assert.equal(e.issues[0]!.field, `env.A${".a".repeat(30)}`);
  });

  test("more than 100 aliases, or an alias bomb, is refused at the line of the first alias", () => {
    const anchors = Array.from({ length: 101 }, (_, i) => `  A${i}: &a${i} x\n`).join("");
    const many = refusal(`${job}env:\n${anchors}command: [${Array.from({ length: 101 }, (_, i) => `*a${i}`).join(", ")}]\n`);
    assert.deepEqual([many.issues[0]!.line, many.issues[0]!.message], [105, "101 aliases (*name): a task file may use at most 100"]);
    const levels = Array.from({ length: 6 }, (_, i) => `L${i + 1}: &l${i + 1} [${Array(9).fill(`*l${i}`).join(", ")}]\n`).join("");
    const bomb = refusal(`${job}L0: &l0 [lol, lol]\n${levels}`);
    assert.equal(bomb.issues[0]!.line, 4);
    assert.match(bomb.issues[0]!.message, /Excessive alias count/);
  });

  test("keys that are collections, or nothing, are reported on their own line", () => {
    assert.deepEqual(refusal(`${job}? [a, b]\n: c\n`).issues.map((i) => [i.field, i.line]), [['["[ a, b ]"]', 3]]);
    assert.deepEqual(refusal(`${job}: orphan\n`).issues.map((i) => [i.field, i.line]), [['[""]', 3]]);
  });

  test("a tag the YAML library cannot apply is refused at its line, not read as plain text", () => {
    // `!!float 1` gave the name "1", a valid name.
    assert.deepEqual(refusal(`command: [a]\nname: !!float 1\n`).issues.map((i) => [i.line, i.message]), [[2, "unknown YAML tag tag:yaml.org,2002:float (task files need no tags)"]]);
    assert.match(refusal(`${job}isolation: !local process\n`).issues[0]!.message, /unknown YAML tag !local/);
  });

  test("a file with 25,000 mistakes gets the first 100 and a count of the rest", () => {
    const on = Array.from({ length: 25_000 }, (_, i) => `event-${i}`).join(", ");
    const e = refusal(`${job}notify: { email: [ops@example.com], on: [${on}] }\n`);
    assert.equal(e.issues.length, 101);
    assert.equal(e.issues[0]!.field, "notify.on[0]");
    assert.deepEqual(e.issues[100], { field: "", message: "and 24900 more problems like these (fix these first)" });
  });
});
