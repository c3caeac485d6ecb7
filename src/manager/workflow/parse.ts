/**
 * Workflow files: YAML (or JSON) text in, a validated WorkflowDef out, or one
 * ValidationError listing every issue with its field and line (the same
 * positions as task files: src/common/taskfile/yaml-positions.ts). The
 * workflow's own keys are checked with a zod schema; each node's job with the
 * task-file rules, inline (lines in the workflow file) or from a file named by
 * a path relative to the workflow file (lines in that file). The graph is
 * checked last: duplicate names, unknown parents, cycles.
 *
 * The CLI reads the referenced files and sends them with the workflow
 * (`files`), and the server runs this same function once on what it received.
 */
import { z } from "zod";
import { formatIssue, ValidationError, type InputIssue } from "../../common/errors.js";
import type { JobSpec } from "../../common/types.js";
import { formatPath, suggest } from "../../common/taskfile/index.js";
import { isPlainObject } from "../../common/taskfile/describe.js";
import type { Path, RawIssue } from "../../common/taskfile/issues.js";
import { checkDocument } from "../../common/taskfile/rules/job.js";
import { hardenedValue, parseYaml } from "../../common/taskfile/yaml-hardening.js";
import { locate, plainScalarSource } from "../../common/taskfile/yaml-positions.js";
import { findCycle } from "./graph.js";
import { jobNameOf, WHEN, type WorkflowDef, type WorkflowNodeDef } from "./types.js";

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_NODES = 1000;
const MAX_RETRY = 100;

const name = (what: string) => z.string({ invalid_type_error: `must be a string (a ${what})` }).regex(NAME_RE, `is not a valid ${what}: lowercase letters, digits and dashes, at most 63, starting and ending with a letter or digit`);
const command = z.array(z.string().min(1, "an empty argument"), { invalid_type_error: "must be a list of strings (the command and its arguments)" }).min(1, "must name a command");

const NodeSchema = z
  .object({
    name: name("node name"),
    after: z.array(z.string({ invalid_type_error: "must be a node name" })).default([]),
    when: z.enum(WHEN, { errorMap: () => ({ message: `must be one of ${WHEN.join(", ")}` }) }).default("ok"),
    retry: z.number().int().min(0).max(MAX_RETRY).default(0),
    pre: command.optional(),
    post: command.optional(),
    job: z.union([z.string().min(1), z.record(z.unknown())], { errorMap: () => ({ message: "must be a task file path (relative to the workflow file) or an inline task description" }) }),
  })
  .strict();

const WorkflowSchema = z
  .object({
    workflow: name("workflow name"),
    namespace: name("namespace").optional(),
    throttle: z.number().int().min(1).max(MAX_NODES).optional(),
    vars: z.record(z.string().regex(ENV_NAME_RE, "is not an environment variable name"), z.union([z.string(), z.number(), z.boolean()])).default({}),
    nodes: z.array(z.unknown()).min(1, "a workflow needs at least one node").max(MAX_NODES),
  })
  .strict();

export interface ParseWorkflowOptions {
  /** The workflow file's name, the prefix of error messages. */
  source?: string;
  /** Task files the nodes name, by the path as written in the workflow file. */
  files?: Readonly<Record<string, string>>;
  /** The namespace of a file that names none (the token's, when it has exactly one); default "default". */
  defaultNamespace?: string;
}

interface ParsedText {
  value: unknown;
  where: (raw: RawIssue) => InputIssue;
  sourceText: (path: Path) => string | undefined;
}

/** YAML or JSON text with positions; a syntax error is thrown at once. */
function parseText(text: string, source: string | undefined): ParsedText {
  const clean = text.replace(/^\uFEFF/, "");
  const parsed = parseYaml(clean, /\.json$/i.test(source ?? "") ? "JSON" : "YAML", source);
  if (parsed.syntax) throw new ValidationError([parsed.syntax], source);
  const { doc, lc } = parsed;
  const { value, issues } = hardenedValue(parsed, source);
  if (issues.length) throw new ValidationError(issues, source);
  return {
    value,
    where: (raw) => ({ field: formatPath(raw.path), message: raw.message, ...(locate(doc, lc, raw) ?? {}) }),
    sourceText: (path) => plainScalarSource(doc, path),
  };
}

/** The task-file paths a workflow file names (for the CLI to read and send along); [] when it cannot be read. */
export function jobPathsOf(text: string): string[] {
  try {
    const { value } = parseText(text, undefined);
    const nodes = isPlainObject(value) && Array.isArray(value.nodes) ? value.nodes : [];
    return [...new Set(nodes.flatMap((n) => (isPlainObject(n) && typeof n.job === "string" ? [n.job] : [])))];
  } catch {
    return [];
  }
}

function zodIssues(error: z.ZodError, prefix: Path, value: unknown): RawIssue[] {
  return error.issues.flatMap((i): RawIssue[] => {
    const path = [...prefix, ...i.path];
    const at = i.path.reduce<unknown>((v, k) => (v !== null && typeof v === "object" ? (v as Record<string | number, unknown>)[k] : undefined), value);
    if (at === undefined) return [{ path, message: "is required", anchor: "parent" }];
    if (i.code === "unrecognized_keys") return i.keys.map((k) => ({ path: [...path, k], message: `unknown key "${k}"`, anchor: "key" as const }));
    return [{ path, message: i.message, anchor: "value" }];
  });
}

/**
 * A node's job through the task-file rules: a workflow node is a batch job
 * unless it says otherwise, its name is optional (the node's job name replaces
 * it), and it restarts on its own only if it asks to (`retry` reruns the node).
 */
function checkNodeJob(raw: Record<string, unknown>, sourceText: (p: Path) => string | undefined): { spec: JobSpec; issues: RawIssue[]; restarts: boolean } {
  const value = { name: "node", type: "batch", ...raw };
  const { spec, issues } = checkDocument(value, sourceText);
  return { spec, issues, restarts: Object.hasOwn(raw, "restart") };
}

/** Parses and validates a workflow file; throws one ValidationError with every issue found. */
export function parseWorkflow(text: string, opts: ParseWorkflowOptions = {}): WorkflowDef {
  const { source } = opts;
  const wf = parseText(text, source);
  const issues: InputIssue[] = [];
  const report = (raw: RawIssue) => issues.push(wf.where(raw));
  const top = WorkflowSchema.safeParse(wf.value);
  if (!top.success) {
    if (!isPlainObject(wf.value)) throw new ValidationError([{ field: "", message: "a workflow file is a mapping with workflow: and nodes:", line: 1, column: 1 }], source);
    zodIssues(top.error, [], wf.value).forEach(report);
    // The nodes are still checked when they can be read, so one pass shows every problem.
    if (!Array.isArray(wf.value.nodes)) throw new ValidationError(issues, source);
  }
  const head = top.success ? top.data : undefined;
  const raw = wf.value as Record<string, unknown>;
  const rawNodes = head?.nodes ?? (raw.nodes as unknown[]);
  const namespace = head?.namespace ?? (typeof raw.namespace === "string" ? raw.namespace : undefined) ?? opts.defaultNamespace ?? "default";
  const vars = Object.fromEntries(Object.entries(head?.vars ?? {}).map(([k, v]) => [k, wf.sourceText(["vars", k]) ?? String(v)]));

  /** The node's job through the task-file rules, or undefined after reporting why not. */
  const jobOf = (node: string, job: string | Record<string, unknown>, i: number): ReturnType<typeof checkNodeJob> | undefined => {
    const at: Path = ["nodes", i, "job"];
    if (typeof job !== "string") {
      const checked = checkNodeJob(job, (p) => wf.sourceText([...at, ...p]));
      checked.issues.forEach((r) => report({ ...r, path: [...at, ...r.path] }));
      return checked.issues.length ? undefined : checked;
    }
    const text = opts.files?.[job];
    if (text === undefined) return void report({ path: at, message: `task file ${JSON.stringify(job)} was not sent (paths are relative to the workflow file)`, anchor: "value" });
    try {
      const file = parseText(text, job);
      if (!isPlainObject(file.value)) return void report({ path: at, message: `node "${node}": ${job}: a task file is a mapping of keys`, anchor: "value" });
      const checked = checkNodeJob(file.value, file.sourceText);
      const inFile = checked.issues.map((r) => formatIssue(file.where(r), job));
      if (inFile.length) return void report({ path: at, message: `node "${node}": ${inFile.join("; ")}`, anchor: "value" });
      return checked;
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      return void report({ path: at, message: `node "${node}": ${e.message}`, anchor: "value" });
    }
  };

  const nodes: IndexedNode[] = [];
  rawNodes.forEach((rawNode, i) => {
    const parsed = NodeSchema.safeParse(rawNode);
    if (!parsed.success) {
      const found = zodIssues(parsed.error, ["nodes", i], rawNode);
      found.forEach(report);
      // The job is checked too when its own key is fine, so one pass shows every problem.
      const raw = isPlainObject(rawNode) ? rawNode : {};
      const jobOk = !found.some((r) => r.path[2] === "job");
      if (jobOk && (typeof raw.job === "string" || isPlainObject(raw.job))) jobOf(typeof raw.name === "string" ? raw.name : `nodes[${i}]`, raw.job, i);
      return;
    }
    const n = parsed.data;
    const checked = jobOf(n.name, n.job, i);
    if (!checked) return;
    const { spec } = checked;
    if (spec.type !== "batch") return report({ path: ["nodes", i, "job"], message: `node "${n.name}": a workflow node runs a batch job (a service never finishes); got type ${spec.type}`, anchor: "value" });
    if (spec.schedule) return report({ path: ["nodes", i, "job"], message: `node "${n.name}": a workflow node's job has no schedule (the workflow decides when it runs)`, anchor: "value" });
    if (spec.namespace !== "default" && spec.namespace !== namespace) {
      return report({ path: ["nodes", i, "job"], message: `node "${n.name}": the job names namespace "${spec.namespace}", the workflow runs in "${namespace}"`, anchor: "value" });
    }
    const job: JobSpec = {
      ...spec,
      name: jobNameOf(head?.workflow ?? "workflow", n.name, "job"),
      namespace,
      env: { ...vars, ...spec.env },
      ...(checked.restarts ? {} : { restart: { ...spec.restart, attempts: 0 } }),
    };
    nodes.push({ index: i, def: { name: n.name, after: n.after, when: n.when, retry: n.retry, ...(n.pre ? { pre: n.pre } : {}), ...(n.post ? { post: n.post } : {}), job } });
  });

  checkGraph(nodes, report);
  if (issues.length || !head) throw new ValidationError(sortByLine(issues), source);
  return { name: head.workflow, namespace, ...(head.throttle ? { throttle: head.throttle } : {}), vars, nodes: nodes.map((n) => n.def) };
}

/** A node and where it is written (nodes[index]). */
interface IndexedNode {
  index: number;
  def: WorkflowNodeDef;
}

/** Duplicate names, parents that are not nodes, a node after itself, cycles: each names the node and points at its line. */
function checkGraph(indexed: readonly IndexedNode[], report: (r: RawIssue) => void): void {
  const nodes = indexed.map((n) => ({ ...n.def, index: n.index }));
  const first = new Map<string, number>();
  for (const n of nodes) {
    const earlier = first.get(n.name);
    if (earlier !== undefined) report({ path: ["nodes", n.index, "name"], message: `duplicate node name "${n.name}" (also nodes[${earlier}])`, anchor: "value" });
    else first.set(n.name, n.index);
  }
  const names = [...first.keys()];
  for (const n of nodes) {
    n.after.forEach((p, k) => {
      if (p === n.name) report({ path: ["nodes", n.index, "after", k], message: `node "${n.name}" cannot run after itself`, anchor: "value" });
      else if (!first.has(p)) {
        const hint = suggest(p, names);
        report({ path: ["nodes", n.index, "after", k], message: `node "${n.name}" runs after "${p}", which is not a node of this workflow${hint ? ` (did you mean "${hint}"?)` : ""}`, anchor: "value" });
      }
    });
  }
  const cycle = findCycle(nodes.map((n) => ({ name: n.name, after: n.after.filter((p) => p !== n.name) })));
  if (cycle) {
    const at = nodes.find((n) => n.name === cycle[0])!;
    report({ path: ["nodes", at.index, "after"], message: `node "${at.name}" is in a cycle: ${cycle.join(" → ")}`, anchor: "value" });
  }
}

function sortByLine(issues: InputIssue[]): InputIssue[] {
  return issues.map((issue, i) => ({ issue, i })).sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.i - b.i).map((x) => x.issue);
}
