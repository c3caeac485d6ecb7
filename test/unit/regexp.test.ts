/**
 * Constraint patterns run on a linear-time engine (src/common/regexp.ts):
 * RE2 syntax, unanchored matching, and a named reason for every pattern refused.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { compileConstraintPattern, type ConstraintPattern } from "../../src/common/regexp.js";

function compiled(source: string): ConstraintPattern {
  const r = compileConstraintPattern(source);
  assert.ok(r.ok, `expected ${JSON.stringify(source)} to compile, got: ${r.ok ? "" : r.reason}`);
  return r.pattern;
}

function refusal(source: string): string {
  const r = compileConstraintPattern(source);
  assert.ok(!r.ok, `expected ${JSON.stringify(source)} to be refused`);
  return r.reason;
}

describe("compileConstraintPattern", () => {
  test("matches unanchored, as in Nomad; ^…$ anchors", () => {
    assert.equal(compiled("node").test("rack-1-node-7"), true);
    assert.equal(compiled("^node-[0-9]+$").test("node-12"), true);
    assert.equal(compiled("^node-[0-9]+$").test("rack-1-node-12"), false);
    assert.equal(compiled("^node-[0-9]+$").source, "^node-[0-9]+$");
  });

  test("reads Unicode and RE2's inline flags", () => {
    assert.equal(compiled("^caf.$").test("café"), true);
    assert.equal(compiled("(?i)^EU-").test("eu-west"), true);
  });

  test("the pathological pattern ^(.*?)*(.*?)*(.*?)*(.*?)*!$ is answered on long inputs without backtracking", () => {
    const p = compiled("^(.*?)*(.*?)*(.*?)*(.*?)*!$");
    // A backtracking engine tries exponentially many splits of these before failing; RE2 reads each once.
    for (const n of [16, 32, 4096]) {
      assert.equal(p.test("a".repeat(n)), false);
      assert.equal(p.test("a".repeat(n) + "!"), true);
    }
  });

  test("lookaround and backreferences are refused with the engine's reason and what RE2 lacks", () => {
    assert.match(refusal("node(?=-1)"), /unsupported Perl syntax: `\(\?=`.*no backreferences or lookaround/);
    assert.match(refusal("node(?<!x)"), /`\(\?<!x\)`.*no backreferences or lookaround/);
    assert.match(refusal("(a)\\1"), /invalid escape sequence: `\\1`.*no backreferences or lookaround/);
  });

  test("a pattern that does not compile says why, without the engine's prefix", () => {
    assert.equal(refusal("node-(\\d+"), "missing closing ): `node-(\\d+`");
    assert.equal(refusal("[z-a]"), "invalid character class range: `z-a`");
    assert.equal(refusal("a{2,1}"), "invalid repeat count: `{2,1}`");
  });
});
