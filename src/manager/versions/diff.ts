/**
 * What a new version changes, pure: the fields that differ between two specs,
 * whether the change needs new instances or is applied in place, and what
 * happens to each live instance.
 */
import { taskIdOf, TERMINAL_TASK_STATES, type JobSpec, type TaskInstance } from "../../common/types.js";

/** Top-level fields a running instance does not see: changed in the job's record, no restart. */
export const IN_PLACE_FIELDS: ReadonlySet<string> = new Set(["instances", "notify", "restart", "update"]);

export interface FieldChange {
  /** Dotted path, e.g. `env.GREETING` or `resources.memory`. */
  field: string;
  from?: unknown;
  to?: unknown;
  /** Applied without restarting instances. */
  inPlace: boolean;
}

export interface SpecDiff {
  identical: boolean;
  fields: FieldChange[];
  /** Some change needs instances replaced (anything but the in-place fields). */
  replaces: boolean;
}

export interface VersionSide {
  spec: JobSpec;
  packageDigest?: string | undefined;
}

export function diffSpecs(from: VersionSide, to: VersionSide): SpecDiff {
  const fields: FieldChange[] = [];
  walk(from.spec, to.spec, "", fields);
  if ((from.packageDigest ?? "") !== (to.packageDigest ?? "") && !fields.some((f) => f.field.startsWith("package"))) {
    fields.push({ field: "packageDigest", from: from.packageDigest, to: to.packageDigest, inPlace: false });
  }
  return { identical: fields.length === 0, fields, replaces: fields.some((f) => !f.inPlace) };
}

/** True when an instance of `from` can become an instance of `to` without a restart. */
export function updatableInPlace(from: VersionSide, to: VersionSide): boolean {
  return !diffSpecs(from, to).replaces;
}

function walk(a: unknown, b: unknown, path: string, out: FieldChange[]): void {
  if (isRecord(a) && isRecord(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) walk(a[k], b[k], path ? `${path}.${k}` : k, out);
    return;
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  const top = path.split(".")[0] ?? path;
  out.push({ field: path, ...(a !== undefined ? { from: a } : {}), ...(b !== undefined ? { to: b } : {}), inPlace: IN_PLACE_FIELDS.has(top) });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface InstancePlan {
  replaced: string[];
  updatedInPlace: string[];
  added: string[];
  removed: string[];
}

/** Live instances: wanted and not finished. */
export function liveInstances(tasks: readonly TaskInstance[]): TaskInstance[] {
  return tasks.filter((t) => t.desired === "run" && !TERMINAL_TASK_STATES.has(t.state));
}

/**
 * What the new version does to the job's live instances: the highest indexes
 * go when there are fewer instances, new ones take the free slots (indexes
 * with no record or a finished one) when there are more.
 */
export function planInstances(jobId: string, tasks: readonly TaskInstance[], diff: SpecDiff, instances: number): InstancePlan {
  const live = liveInstances(tasks).sort((x, y) => x.index - y.index);
  const kept = live.slice(0, instances);
  const removed = live.slice(instances).map((t) => t.id);
  const plan: InstancePlan = { replaced: [], updatedInPlace: [], added: [], removed };
  if (!diff.identical) for (const t of kept) (diff.replaces ? plan.replaced : plan.updatedInPlace).push(t.id);
  const taken = new Set(live.map((t) => t.index));
  for (let i = 0; plan.added.length < instances - kept.length; i++) if (!taken.has(i)) plan.added.push(taskIdOf(jobId, i));
  return plan;
}
