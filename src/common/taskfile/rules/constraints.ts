/** `constraints:` which machines a task may run on, by their attributes; `regexp` patterns must compile in src/common/regexp.ts. */
import { compileConstraintPattern } from "../../regexp.js";
import type { Constraint, ConstraintOperator } from "../../types.js";
import type { Checker } from "../checks.js";
import { describe } from "../describe.js";
import type { Path } from "../issues.js";
import { SCHEMA_KEYS } from "../schema.js";

const OPERATORS: readonly ConstraintOperator[] = ["=", "!=", "in", "regexp"];

export function checkConstraints(c: Checker, v: unknown, path: Path): Constraint[] {
  const items = c.list(v, path, `[{ attribute: os, operator: "=", value: linux }]`);
  if (!items) return [];
  const out: Constraint[] = [];
  items.forEach((item, i) => {
    const s = c.section(item, [...path, i], SCHEMA_KEYS.constraint);
    if (!s) return;
    const attrV = s.required("attribute");
    const attribute = attrV === undefined ? undefined : c.string(attrV, s.at("attribute"));
    if (attribute !== undefined && attribute.trim() === "") c.add(s.at("attribute"), "must not be empty");
    const opV = s.required("operator");
    const operator = opV === undefined ? undefined : c.oneOf(opV, s.at("operator"), OPERATORS);
    const valV = s.required("value");
    let value: string | string[] | undefined;
    if (valV !== undefined && operator === "in") {
      if (!Array.isArray(valV)) {
        c.add(s.at("value"), `operator "in" needs a list of values, e.g. [a, b]; got ${describe(valV)}`);
      } else if (valV.length === 0) {
        c.add(s.at("value"), `operator "in" needs at least one value`);
      } else {
        const vals = valV.map((x, j) => c.scalarString(x, [...s.at("value"), j]));
        if (vals.every((x): x is string => x !== undefined)) value = vals;
      }
    } else if (valV !== undefined && operator !== undefined) {
      if (Array.isArray(valV)) {
        c.add(s.at("value"), `operator ${JSON.stringify(operator)} needs a single value, got a list (use operator "in" for a list)`);
      } else {
        value = c.scalarString(valV, s.at("value"));
        if (value !== undefined && operator === "regexp") {
          const compiled = compileConstraintPattern(value);
          if (!compiled.ok) {
            c.add(s.at("value"), `is not a valid regular expression: ${compiled.reason}`);
            value = undefined;
          }
        }
      }
    }
    if (attribute !== undefined && operator !== undefined && value !== undefined) out.push({ attribute, operator, value });
  });
  return out;
}
