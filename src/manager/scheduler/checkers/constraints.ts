/**
 * The job's constraints on node attributes, in spec order; the first one a
 * node fails is its reason. A missing attribute fails every operator, `!=`
 * included: the node cannot prove it qualifies.
 */
import { TorcaError } from "../../../common/errors.js";
import { compileConstraintPattern, type ConstraintPattern } from "../../../common/regexp.js";
import type { Constraint, NodeInfo } from "../../../common/types.js";
import type { Checker } from "../chain.js";
import { FEASIBLE, type ReasonTable } from "../reasons.js";

interface CompiledConstraint {
  attribute: string;
  reason: number;
  matches(value: string): boolean;
}

/** Human text of a constraint, as used in reasons: `os = linux`, `zone in [a, b]`. */
export function constraintText(c: Constraint): string {
  const value = Array.isArray(c.value) ? `[${c.value.join(", ")}]` : c.value;
  return `${c.attribute} ${c.operator} ${value}`;
}

/**
 * `regexp` patterns, compiled once per call with the linear-time engine and
 * shared by every task that uses the same pattern: no pattern can make a
 * placement cost more than the length of the attribute it reads.
 */
export class RegexpCache {
  private readonly compiled = new Map<string, ConstraintPattern | null>();

  get(source: string): ConstraintPattern | null {
    let re = this.compiled.get(source);
    if (re === undefined) {
      const c = compileConstraintPattern(source);
      re = c.ok ? c.pattern : null;
      this.compiled.set(source, re);
    }
    return re;
  }
}

/**
 * Whether a value meets `c`, with the semantics of job constraints (device
 * constraints use it too); null when the `regexp` pattern does not compile.
 */
export function constraintMatcher(c: Constraint, regexps: RegexpCache): ((value: string) => boolean) | null {
  const scalar = (): string => {
    if (typeof c.value !== "string") throw new TorcaError("internal", `scheduler: constraint ${c.attribute} ${c.operator} needs a string value`);
    return c.value;
  };
  switch (c.operator) {
    case "=": {
      const want = scalar();
      return (v) => v === want;
    }
    case "!=": {
      const avoid = scalar();
      return (v) => v !== avoid;
    }
    case "in": {
      // A plain string is accepted as a comma-separated list ("a,b").
      const list = Array.isArray(c.value) ? c.value : c.value.split(",").map((s) => s.trim());
      const allowed = new Set(list);
      return (v) => allowed.has(v);
    }
    case "regexp": {
      const re = regexps.get(scalar());
      // Unanchored, like Nomad and most regexp engines: write ^…$ to match the whole value.
      return re === null ? null : (v) => re.test(v);
    }
    default: {
      const never: never = c.operator;
      throw new TorcaError("internal", `scheduler: unknown constraint operator ${String(never)}`);
    }
  }
}

function compileConstraint(c: Constraint, reasons: ReasonTable, regexps: RegexpCache): CompiledConstraint {
  const origin = { checker: constraints.name };
  const matches = constraintMatcher(c, regexps);
  // A pattern stored before the parser checked patterns may not compile: it matches nothing, and says so.
  if (matches === null) return { attribute: c.attribute, reason: reasons.code(`constraint ${constraintText(c)} is not a valid regular expression`, origin), matches: () => false };
  return { attribute: c.attribute, reason: reasons.code(`constraint ${constraintText(c)} failed`, origin), matches };
}

export const constraints: Checker = {
  name: "constraints",
  static: true,
  preemptible: false,
  signature(cls) {
    return JSON.stringify(cls.spec.constraints);
  },
  forClass(cls, { state, reasons, regexps }) {
    const compiled = cls.spec.constraints.map((c) => compileConstraint(c, reasons, regexps));
    const nodes = state.nodes;
    return {
      check: (node) => {
        const attributes = (nodes[node] as NodeInfo).attributes;
        for (let i = 0; i < compiled.length; i++) {
          const c = compiled[i] as CompiledConstraint;
          const value = Object.hasOwn(attributes, c.attribute) ? attributes[c.attribute] : undefined;
          if (value === undefined || !c.matches(value)) return c.reason;
        }
        return FEASIBLE;
      },
    };
  },
};
