import { z } from "zod";

/**
 * A yes/no check compiled from a zod schema, so that the bulk of what Torca
 * reads (chunks of task records on a backup's cold load, agents' ads and
 * reports on the primary) skips zod's parse: about 40 µs per task record here,
 * 4 s for 100,000, while this check of the same rules costs a few. It accepts
 * exactly what the schema accepts for the kinds it knows (objects,
 * passthrough, strip or strict, strings, numbers, booleans, enums, arrays with
 * length bounds, tuples, records, optionals, nullables, defaults (a value
 * given), with the min/max/int checks) and whose value zod would return
 * unchanged (no key a stripping object would drop, no default to fill in);
 * `compileCheck` returns undefined for a schema using anything else, and a
 * value it refuses is parsed by zod anyway, which names the field. So the
 * schema stays the one definition of what is valid.
 */
export type Check = (v: unknown) => boolean;

const compiled = new WeakMap<z.ZodTypeAny, Check | null>();

/** The schema's compiled check, compiled once per schema (null when it cannot be). */
export function checkOf(schema: z.ZodTypeAny): Check | null {
  let c = compiled.get(schema);
  if (c === undefined) compiled.set(schema, (c = compileCheck(schema) ?? null));
  return c;
}

/** zod's safeParse, or the value itself when the compiled check passes it (zod would return it unchanged). */
export function safeParseFast<T extends z.ZodTypeAny>(schema: T, raw: unknown): z.SafeParseReturnType<unknown, z.output<T>> {
  if (checkOf(schema)?.(raw)) return { success: true, data: raw as z.output<T> };
  return schema.safeParse(raw) as z.SafeParseReturnType<unknown, z.output<T>>;
}

export function compileCheck(schema: z.ZodTypeAny): Check | undefined {
  const def: unknown = schema._def;
  if (schema instanceof z.ZodString) return numberLike(def, (v) => typeof v === "string", (v) => (v as string).length);
  if (schema instanceof z.ZodNumber) return numberLike(def, (v) => typeof v === "number" && !Number.isNaN(v), (v) => v as number);
  if (schema instanceof z.ZodBoolean) return (v) => typeof v === "boolean";
  if (schema instanceof z.ZodEnum) {
    const values = new Set<unknown>(schema.options as unknown[]);
    return (v) => values.has(v);
  }
  if (schema instanceof z.ZodOptional) {
    const inner = compileCheck(schema.unwrap() as z.ZodTypeAny);
    return inner && ((v) => v === undefined || inner(v));
  }
  if (schema instanceof z.ZodNullable) {
    const inner = compileCheck(schema.unwrap() as z.ZodTypeAny);
    return inner && ((v) => v === null || inner(v));
  }
  if (schema instanceof z.ZodArray) {
    const d = schema._def;
    const item = compileCheck(d.type as z.ZodTypeAny);
    if (!item) return undefined;
    const min = d.exactLength?.value ?? d.minLength?.value ?? 0;
    const max = d.exactLength?.value ?? d.maxLength?.value ?? Infinity;
    return (v) => Array.isArray(v) && v.length >= min && v.length <= max && v.every(item);
  }
  if (schema instanceof z.ZodTuple) {
    const d = schema._def as { items: z.ZodTypeAny[]; rest: z.ZodTypeAny | null };
    if (d.rest) return undefined;
    const items = d.items.map((i) => compileCheck(i));
    if (items.some((c) => !c)) return undefined;
    return (v) => Array.isArray(v) && v.length === items.length && items.every((c, i) => c!(v[i]));
  }
  if (schema instanceof z.ZodDefault) {
    // Absent, zod would fill in the default: only a value given is returned as it is.
    const inner = compileCheck(schema.removeDefault() as z.ZodTypeAny);
    return inner && ((v) => v !== undefined && inner(v));
  }
  if (schema instanceof z.ZodRecord) {
    const value = compileCheck(schema.valueSchema as z.ZodTypeAny);
    if (!value || !(schema.keySchema instanceof z.ZodString) || schema.keySchema._def.checks.length > 0) return undefined;
    return (v) => isPlainObject(v) && Object.values(v).every(value);
  }
  if (schema instanceof z.ZodObject) {
    const shape = schema.shape as Record<string, z.ZodTypeAny>;
    const unknownKeys = schema._def.unknownKeys as string;
    if (unknownKeys !== "passthrough" && unknownKeys !== "strip" && unknownKeys !== "strict") return undefined;
    if (!(schema._def.catchall instanceof z.ZodNever)) return undefined;
    const fields: [string, Check][] = [];
    for (const [key, s] of Object.entries(shape)) {
      const c = compileCheck(s);
      if (!c) return undefined;
      fields.push([key, c]);
    }
    const known = (v: Record<string, unknown>) => fields.every(([key, c]) => c(v[key]));
    if (unknownKeys === "passthrough") return (v) => isPlainObject(v) && known(v);
    // A stripping object would drop unknown keys and a strict one refuse them: either way only a value without any is returned as it is.
    return (v) => isPlainObject(v) && known(v) && Object.keys(v).every((key) => Object.hasOwn(shape, key));
  }
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Strings and numbers: the type, then each check on the value (or the string's length). */
function numberLike(def: unknown, isType: (v: unknown) => boolean, measure: (v: unknown) => number): Check | undefined {
  const checks = (def as { checks: { kind: string; value?: number; inclusive?: boolean }[] }).checks;
  const tests: ((n: number) => boolean)[] = [];
  for (const c of checks) {
    const limit = c.value ?? 0;
    if (c.kind === "int") tests.push((n) => Number.isInteger(n));
    else if (c.kind === "finite") tests.push((n) => Number.isFinite(n));
    else if (c.kind === "min") tests.push(c.inclusive === false ? (n) => n > limit : (n) => n >= limit);
    else if (c.kind === "max") tests.push(c.inclusive === false ? (n) => n < limit : (n) => n <= limit);
    else return undefined;
  }
  return (v) => isType(v) && tests.every((t) => t(measure(v)));
}
