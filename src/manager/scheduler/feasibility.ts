/**
 * Feasibility checkers. Each returns FEASIBLE or the code of the reason the
 * node was rejected; the first failing check of a node is the one recorded.
 *
 * Checks that depend only on the node and the job (state, driver, constraints)
 * are memoized per task class; checks that depend on what has been placed
 * (resources, spread limit, ports) run on every visit.
 */
import { TorcaError } from "../../common/errors.js";
import type { Constraint, JobSpec, NodeInfo } from "../../common/types.js";
import type { ClusterState } from "./cluster-state.js";
import { FEASIBLE, type ReasonTable } from "./reasons.js";

/** Tolerance for float noise in free-resource arithmetic (0.1 + 0.2 cores). */
export const RESOURCE_EPSILON = 1e-9;

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
 * Regular expressions are compiled once per call and shared by every task that
 * uses the same pattern.
 */
export class RegexpCache {
  private readonly compiled = new Map<string, RegExp | null>();

  get(pattern: string): RegExp | null {
    let re = this.compiled.get(pattern);
    if (re === undefined) {
      try {
        re = new RegExp(pattern, "u");
      } catch {
        re = null;
      }
      this.compiled.set(pattern, re);
    }
    return re;
  }
}

function compileConstraint(c: Constraint, reasons: ReasonTable, regexps: RegexpCache): CompiledConstraint {
  const failed = reasons.code(`constraint ${constraintText(c)} failed`);
  const scalar = (): string => {
    if (typeof c.value !== "string") throw new TorcaError("internal", `scheduler: constraint ${c.attribute} ${c.operator} needs a string value`);
    return c.value;
  };
  switch (c.operator) {
    case "=": {
      const want = scalar();
      return { attribute: c.attribute, reason: failed, matches: (v) => v === want };
    }
    case "!=": {
      const avoid = scalar();
      return { attribute: c.attribute, reason: failed, matches: (v) => v !== avoid };
    }
    case "in": {
      // A plain string is accepted as a comma-separated list ("a,b").
      const list = Array.isArray(c.value) ? c.value : c.value.split(",").map((s) => s.trim());
      const allowed = new Set(list);
      return { attribute: c.attribute, reason: failed, matches: (v) => allowed.has(v) };
    }
    case "regexp": {
      const pattern = scalar();
      const re = regexps.get(pattern);
      // An invalid pattern matches nothing, and says so, rather than crashing the manager.
      if (re === null) return { attribute: c.attribute, reason: reasons.code(`constraint ${constraintText(c)} is not a valid regular expression`), matches: () => false };
      // Unanchored, like Nomad and most regexp engines: write ^…$ to match the whole value.
      return { attribute: c.attribute, reason: failed, matches: (v) => re.test(v) };
    }
    default: {
      const never: never = c.operator;
      throw new TorcaError("internal", `scheduler: unknown constraint operator ${String(never)}`);
    }
  }
}

/**
 * The node-and-job checks (node state, driver, constraints), memoized per node:
 * their answer cannot change during one call.
 */
export class StaticFeasibility {
  /** 0 = not yet checked, otherwise the result code + 1. */
  private readonly memo: Uint16Array;
  private readonly constraints: CompiledConstraint[];
  private readonly driverOk: (node: NodeInfo) => boolean;
  private readonly driverReason: number;

  constructor(
    private readonly state: ClusterState,
    spec: JobSpec,
    reasons: ReasonTable,
    regexps: RegexpCache,
  ) {
    this.memo = new Uint16Array(state.size);
    this.constraints = spec.constraints.map((c) => compileConstraint(c, reasons, regexps));
    if (spec.isolation === "lxc") {
      this.driverOk = (node) => node.drivers.lxc;
      this.driverReason = reasons.lxcUnavailable;
    } else if (spec.isolation === "process") {
      this.driverOk = (node) => node.drivers.process;
      this.driverReason = reasons.processUnavailable;
    } else {
      // No preference: LXC where the agent has it, plain processes otherwise.
      this.driverOk = (node) => node.drivers.lxc || node.drivers.process;
      this.driverReason = reasons.code("no task driver available");
    }
  }

  check(node: number): number {
    const known = this.memo[node] as number;
    if (known !== 0) return known - 1;
    const result = this.evaluate(node);
    this.memo[node] = result + 1;
    return result;
  }

  private evaluate(index: number): number {
    const unavailable = this.state.unavailableReason[index] as number;
    if (unavailable !== FEASIBLE) return unavailable;
    const node = this.state.nodes[index] as NodeInfo;
    if (!this.driverOk(node)) return this.driverReason;
    const attributes = node.attributes;
    for (const c of this.constraints) {
      // A missing attribute fails every operator, `!=` included: the node cannot prove it qualifies.
      const value = Object.hasOwn(attributes, c.attribute) ? attributes[c.attribute] : undefined;
      if (value === undefined || !c.matches(value)) return c.reason;
    }
    return FEASIBLE;
  }
}
