/**
 * Patterns of `regexp` constraints, compiled with a linear-time engine (RE2JS,
 * RE2 syntax): matching time grows with the length of the value only, whatever
 * the pattern, so a task file cannot make the scheduler spend exponential time
 * on one node attribute. The price is RE2's syntax: no backreferences and no
 * lookaround. The task-file parser refuses patterns this engine cannot compile,
 * so every pattern submitted since compiles here.
 */
import { RE2JS } from "re2js";

export interface ConstraintPattern {
  readonly source: string;
  /** Unanchored, as in Nomad: write ^…$ to match the whole value. */
  test(value: string): boolean;
}

export type CompiledPattern = { ok: true; pattern: ConstraintPattern } | { ok: false; reason: string };

/** Unsupported syntax is named as such: it is the difference users meet coming from JavaScript or Perl patterns. */
const LINEAR_TIME_HINT = "constraint patterns use RE2 syntax, which matches in linear time: no backreferences or lookaround";

export function compileConstraintPattern(source: string): CompiledPattern {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (e) {
    const raw = e instanceof Error ? e.message : String(e);
    const reason = raw.replace(/^error parsing regexp: /, "");
    // RE2 reports lookbehind as a malformed named group, so look for it in the pattern.
    const beyondRe2 = /unsupported|escape sequence/.test(reason) || /\(\?<[=!]/.test(source);
    return { ok: false, reason: beyondRe2 ? `${reason} (${LINEAR_TIME_HINT})` : reason };
  }
  return { ok: true, pattern: { source, test: (value) => re.test(value) } };
}
