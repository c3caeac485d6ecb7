/**
 * Task description files (DESIGN.md, "Task description file (contract)"):
 * YAML or JSON text in, a validated JobSpec with normalized units out.
 *
 * The validator is hand-written rather than a zod schema because the contract
 * asks for things zod makes awkward: every issue collected in one pass
 * (including cross-field rules even when other fields are broken), messages in
 * our own words, "did you mean" for unknown keys, and issues anchored on the
 * key (unknown/reserved keys), the value, or the parent mapping (missing keys)
 * so that line numbers point where the user has to edit.
 *
 * The allowed keys of every mapping live in one table, SCHEMA_KEYS; the rules
 * for each field live in checkJob(). Both entry points share them, so a file
 * and an already-parsed object obey exactly the same rules.
 */
import { LineCounter, isAlias, isCollection, isMap, isNode, isScalar, isSeq, parseDocument, stringify, type Document, type Pair, type YAMLMap } from "yaml";
import { ValidationError, type InputIssue } from "./errors.js";
import {
  PRIORITY_BATCH,
  PRIORITY_PROD,
  type AlertOn,
  type Constraint,
  type ConstraintOperator,
  type HealthCheck,
  type JobSpec,
  type NotifySpec,
  type PackageRef,
  type PlacementPolicy,
  type PortSpec,
  type Resources,
  type RestartPolicy,
} from "./types.js";
import { parseCpu, parseDuration, parseSize } from "./units.js";

export interface ParseTaskFileOptions {
  /** File name, used as the prefix of error messages. */
  source?: string;
  /** Default: JSON when the source name ends in .json or the text starts with `{`/`[`, else YAML. */
  format?: "yaml" | "json";
}

/** The allowed keys of every mapping in a task file: the single source for unknown-key checks. */
export const SCHEMA_KEYS = {
  job: [
    "name", "namespace", "type", "priority", "instances", "package", "command", "env", "resources", "isolation",
    "constraints", "ports", "service", "restart", "schedule", "notify", "placement",
  ],
  resources: ["cpu", "memory", "disk"],
  constraint: ["attribute", "operator", "value"],
  port: ["name", "static", "check"],
  check: ["type", "path", "interval", "timeout", "failures"],
  service: ["name"],
  restart: ["attempts", "delay", "backoff", "maxDelay"],
  notify: ["email", "sms", "on"],
  placement: ["strategy", "maxPerNode"],
} as const;

/** Values used when a field is absent. Exported so the CLI and docs can show them. */
export const TASKFILE_DEFAULTS = {
  namespace: "default",
  instances: 1,
  resources: { cpu: 0.1, memory: 64 * 1024 ** 2, disk: 256 * 1024 ** 2 } satisfies Resources,
  restart: { attempts: 3, delayMs: 1000, backoff: 2, maxDelayMs: 60_000 } satisfies RestartPolicy,
  check: { path: "/", intervalMs: 5000, timeoutMs: 1000, failures: 3 },
  notifyOn: ["failed", "lost"] as AlertOn[],
  placement: { strategy: "binpack" } satisfies PlacementPolicy,
} as const;

const LIMITS = {
  maxInstances: 10_000,
  maxCpu: 1024,
  minMemory: 4 * 1024 ** 2,
  maxPriority: 1000,
  /** Longest duration: timers cannot wait longer than 2^31-1 ms (about 24.8 days) and would fire at once instead. */
  maxDurationMs: 24 * 86_400_000,
  /** Collections inside collections; the deepest valid file needs 4 (ports[0].check.type). */
  maxNesting: 32,
  /** Each alias costs the YAML library a pass over the document; a task file needs few, if any. */
  maxAliases: 100,
  /** Issues reported for one file; past this, a count. Keeps answers and the work of building them small. */
  maxIssues: 100,
  maxServiceName: 253,
};

/**
 * uniqueKeys off: the library finds duplicate keys by comparing every key with every
 * earlier one (quadratic: a 1 MiB mapping took minutes); inspectTree() does it with a set.
 * logLevel "error": warnings would go to process.emitWarning; problems are reported as issues instead.
 */
const YAML_OPTIONS = { prettyErrors: false, logLevel: "error", uniqueKeys: false } as const;

const TOO_DEEP = `is nested more than ${LIMITS.maxNesting} levels deep (a task file needs at most 4)`;

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Package names and versions: one rule for referring (here) and pushing (src/manager/packages/registry.ts). */
export const PACKAGE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,127}$/;
/** "." and ".." are not versions: to ZooKeeper, where name@version is recorded, they mean "here" and "up". */
export const PACKAGE_VERSION_RE = /^(?!\.\.?$)[A-Za-z0-9._+-]{1,128}$/;
const PACKAGE_DIGEST_RE = /^sha256:([0-9a-fA-F]{64})$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PORT_NAME_RE = /^[a-z][a-z0-9_]{0,30}$/;
const SERVICE_NAME_RE = /^[a-z0-9-]+(?:\.[a-z0-9-]+)*$/;
// Deliberately loose: the mail server is the judge of deliverability; this only catches obvious slips.
const EMAIL_RE = /^[^\s@,;<>]+@[^\s@,;<>]+\.[^\s@,;<>]+$/;
const SMS_RE = /^\+?[0-9]{6,15}$/;

const JOB_TYPES = ["service", "batch"] as const;
const ISOLATIONS = ["lxc", "process"] as const;
const OPERATORS: readonly ConstraintOperator[] = ["=", "!=", "in", "regexp"];
const CHECK_TYPES = ["http", "tcp"] as const;
const ALERTS: readonly AlertOn[] = ["failed", "lost", "oom-killed", "unhealthy", "completed", "cron-failed"];
const STRATEGIES = ["binpack", "spread"] as const;

/** Names people reach for from other systems; suggested when the key is allowed where it was written. */
const ALIASES: Record<string, string> = {
  cmd: "command", args: "command", argv: "command", exec: "command",
  replicas: "instances", count: "instances",
  image: "package", pkg: "package",
  environment: "env",
  cpus: "cpu", mem: "memory",
  cron: "schedule",
  healthcheck: "check", health: "check",
  port: "static",
  retries: "attempts",
};

// ---------------------------------------------------------------------------
// Public API

/**
 * Parses and validates a task file. Throws ValidationError listing every issue
 * found, each with its field path and 1-based line/column, sorted by position.
 */
export function parseTaskFile(input: string, opts: ParseTaskFileOptions = {}): JobSpec {
  // Editors on some systems write a byte-order mark; JSON.parse rejects it, YAML ignores it.
  const text = input.replace(/^\uFEFF/, "");
  const lc = new LineCounter();
  const explicitJson = opts.format === "json" || (opts.format === undefined && /\.json$/i.test(opts.source ?? ""));
  const looksJson = opts.format === undefined && /^\s*[{[]/.test(text);

  let jsonFallback: { value: unknown } | undefined;
  if (explicitJson || looksJson) {
    try {
      jsonFallback = { value: JSON.parse(text) as unknown };
    } catch (e) {
      // A YAML flow mapping (`{name: x}`) also starts with `{`; only a detected-by-content
      // file gets a second chance as YAML, so that real JSON files get JSON error messages.
      const yamlOk = !explicitJson && parseDocument(text, YAML_OPTIONS).errors.length === 0;
      if (!yamlOk) throw new ValidationError([jsonSyntaxIssue(text, e)], opts.source);
    }
  }

  // The YAML library reads a quoted scalar cut off right after an escaped quote (`"abc \"`, `'abc ''`) at the
  // very end of the input as closed; with a line break after it, it reports the missing quote. The break
  // changes nothing else, short of a keep-chomped block scalar (`|+`) whose last line ends in a quote.
  const doc = parseDocument(/["']$/.test(text) ? text + "\n" : text, { ...YAML_OPTIONS, lineCounter: lc });
  const at = (offset: number) => {
    // Clamped: an error at the line break added above belongs to the last line of the text.
    const { line, col } = lc.linePos(Math.min(offset, text.length));
    return { line, column: col };
  };
  let syntax: InputIssue | undefined;
  for (const err of doc.errors) {
    // The composer turns a stack overflow on deep nesting into this code; no JSON fallback can read that either.
    if (err.code === "RESOURCE_EXHAUSTION") throw new ValidationError([{ field: "", message: TOO_DEEP, ...at(err.pos[0]) }], opts.source);
    // Only the first syntax error: the parser's later ones are nearly always its consequences.
    // linePos is only filled in with prettyErrors, which would also bury the message in a code excerpt.
    syntax ??= { field: "", message: `${explicitJson ? "invalid JSON" : "invalid YAML"}: ${stripLocation(err.message)}`, ...at(err.pos[0]) };
  }
  if (syntax) {
    if (!jsonFallback) throw new ValidationError([syntax], opts.source);
    // Valid JSON that our YAML parser rejects (rare corner cases): validate it without positions.
    return finish(checkDocument(jsonFallback.value, () => undefined), [], undefined, opts.source);
  }

  if (doc.contents === null) {
    throw new ValidationError([{ field: "", message: "the file is empty: a task file is a mapping with at least name and command", line: 1, column: 1 }], opts.source);
  }

  // Read the tree's shape before building values from it: building is recursive, and resolving aliases costs a pass over the document each.
  const tree = inspectTree(doc);
  if (tree.tooDeep) throw new ValidationError([{ field: formatPath(tree.tooDeep.path), message: TOO_DEEP, ...at(tree.tooDeep.offset) }], opts.source);
  if (tree.aliases > LIMITS.maxAliases) {
    throw new ValidationError([{ field: "", message: `${tree.aliases} aliases (*name): a task file may use at most ${LIMITS.maxAliases}`, ...at(tree.firstAlias ?? 0) }], opts.source);
  }
  // Duplicates leave a well-formed tree, so validation of the rest can go on.
  const issues: InputIssue[] = tree.duplicates.map((d) => ({ field: formatPath(d.path), message: `duplicate key "${String(d.path[d.path.length - 1])}" (each key may appear only once)`, ...at(d.offset) }));
  // A tag the library cannot apply leaves the plain text in its place (`!!float 1` reads as the string "1"): say so rather than run something else.
  for (const w of doc.warnings) {
    if (w.code === "TAG_RESOLVE_FAILED") issues.push({ field: "", message: `unknown YAML tag ${/Unresolved tag: (\S+)/.exec(w.message)?.[1] ?? ""} (task files need no tags)`, ...at(w.pos[0]) });
  }

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: LIMITS.maxAliases });
  } catch (e) {
    // Alias bombs (aliases of aliases) and aliases without an anchor land here.
    throw new ValidationError([{ field: "", message: `invalid YAML: ${e instanceof Error ? e.message : String(e)}`, ...at(tree.firstAlias ?? 0) }], opts.source);
  }

  const located = (raw: RawIssue): InputIssue => {
    const pos = locate(doc, lc, raw);
    return { field: formatPath(raw.path), message: raw.message, ...(pos ?? {}) };
  };
  const result = checkDocument(value, (path) => plainScalarSource(doc, path));
  return finish(result, issues, located, opts.source);
}

/** The same rules for an already-parsed object (e.g. an HTTP body); issues carry no line numbers. */
export function validateJobObject(obj: unknown): JobSpec {
  return finish(checkDocument(obj, () => undefined), [], undefined, undefined);
}

// ---------------------------------------------------------------------------
// Issues and paths

type PathSeg = string | number;
type Path = readonly PathSeg[];

/**
 * Where an issue points: the offending value, the key itself (unknown or
 * reserved keys), or the enclosing mapping (a required key is missing).
 */
type Anchor = "value" | "key" | "parent";

interface RawIssue {
  path: Path;
  message: string;
  anchor: Anchor;
}

function finish(
  result: { spec: JobSpec; issues: RawIssue[]; omitted: number },
  early: InputIssue[],
  locateIssue: ((r: RawIssue) => InputIssue) | undefined,
  source: string | undefined,
): JobSpec {
  const all = sortIssues([...early, ...result.issues.map((r) => (locateIssue ? locateIssue(r) : { field: formatPath(r.path), message: r.message }))]);
  if (all.length === 0) return result.spec;
  const shown = all.slice(0, LIMITS.maxIssues);
  const more = all.length - shown.length + result.omitted;
  if (more > 0) shown.push({ field: "", message: `and ${more} more problems like these (fix these first)` });
  throw new ValidationError(shown, source);
}

function sortIssues(issues: InputIssue[]): InputIssue[] {
  // Stable sort; issues without a position keep discovery order after the positioned ones.
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => {
      const la = a.issue.line ?? Infinity;
      const lb = b.issue.line ?? Infinity;
      if (la !== lb) return la - lb;
      const ca = a.issue.column ?? Infinity;
      const cb = b.issue.column ?? Infinity;
      if (ca !== cb) return ca - cb;
      return a.i - b.i;
    })
    .map((x) => x.issue);
}

/** `ports[1].check.timeout`; keys that are not identifiers are bracket-quoted: `env["A.B"]`. */
export function formatPath(path: Path): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Optimal string alignment distance: a transposition (`instnaces`) counts as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate if it is plausibly a typo (about one edit per three letters). */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const alias = ALIASES[word.toLowerCase()];
  if (alias !== undefined && candidates.includes(alias)) return alias;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  if (bestDistance <= limit) return best;
  // Another form of the same word (`failure` for `failed`) is far in edits but shares a stem.
  const stem = word.toLowerCase().slice(0, 4);
  const sameStem = stem.length === 4 ? candidates.filter((c) => c.toLowerCase().startsWith(stem)) : [];
  return sameStem.length === 1 ? sameStem[0] : undefined;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 37) + "..." : v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "a list";
  if (isPlainObject(v)) return "a mapping";
  if (ArrayBuffer.isView(v)) return "binary data";
  if (typeof v === "object") return `an object of type ${v.constructor?.name ?? "unknown"}`;
  return typeof v;
}

function quoteList(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(", ");
}

// ---------------------------------------------------------------------------
// Checking primitives

/** Source text of a plain YAML scalar, so `VERSION: 1.10` reaches the task as "1.10", not "1.1". */
type SourceText = (path: Path) => string | undefined;

class Checker {
  readonly issues: RawIssue[] = [];
  /** Issues found past LIMITS.maxIssues: counted, not kept. */
  omitted = 0;
  constructor(readonly sourceText: SourceText) {}

  add(path: Path, message: string, anchor: Anchor = "value"): undefined {
    if (this.full) this.omitted++;
    else this.issues.push({ path, message, anchor });
    return undefined;
  }

  /** Once full, work that only improves a message (did-you-mean hints) is skipped. */
  get full(): boolean {
    return this.issues.length >= LIMITS.maxIssues;
  }

  /** A mapping with only `keys`; unknown keys and null values are reported here once. */
  section(v: unknown, path: Path, keys: readonly string[]): Section | undefined {
    if (!isPlainObject(v)) return this.add(path, `must be a mapping of keys (${quoteList(keys.slice(0, 3))}, ...), got ${describe(v)}`);
    const values: Record<string, unknown> = {};
    const nulls = new Set<string>();
    for (const key of Object.keys(v)) {
      if (!keys.includes(key)) {
        const hint = this.full ? undefined : suggest(key, keys);
        this.add([...path, key], `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ` (allowed: ${keys.join(", ")})`}`, "key");
        continue;
      }
      const val = v[key];
      // A key with nothing after it is almost always an unfinished edit; silently defaulting would hide it.
      if (val === null || val === undefined) {
        nulls.add(key);
        this.add([...path, key], "has no value (give one, or remove the key to use the default)");
        continue;
      }
      values[key] = val;
    }
    return new Section(this, path, values, nulls);
  }

  string(v: unknown, path: Path): string | undefined {
    if (typeof v === "string") return v;
    return this.add(path, `must be a string, got ${describe(v)}`);
  }

  /** Strings, plus numbers and booleans written as in the source (argv, env and attribute values). */
  scalarString(v: unknown, path: Path): string | undefined {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return this.sourceText(path) ?? String(v);
    return this.add(path, `must be a string, got ${describe(v)}`);
  }

  int(v: unknown, path: Path, min: number, max: number): number | undefined {
    if (typeof v !== "number") return this.add(path, `must be an integer from ${min} to ${max}, got ${describe(v)}`);
    if (!Number.isInteger(v)) return this.add(path, `must be a whole number, got ${v}`);
    if (v < min || v > max) return this.add(path, `must be from ${min} to ${max}, got ${v}`);
    return v;
  }

  oneOf<T extends string>(v: unknown, path: Path, allowed: readonly T[]): T | undefined {
    if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
    const hint = typeof v === "string" && !this.full ? suggest(v, allowed) : undefined;
    return this.add(path, `${describe(v)} is not one of ${quoteList(allowed)}${hint ? ` (did you mean "${hint}"?)` : ""}`);
  }

  list(v: unknown, path: Path, example: string): unknown[] | undefined {
    if (Array.isArray(v)) return v;
    return this.add(path, `must be a list, e.g. ${example}; got ${describe(v)}`);
  }

  size(v: unknown, path: Path): number | undefined {
    const r = parseSize(v);
    return typeof r === "string" ? this.add(path, r) : r;
  }

  duration(v: unknown, path: Path): number | undefined {
    const r = parseDuration(v);
    if (typeof r === "string") return this.add(path, r);
    if (r > LIMITS.maxDurationMs) return this.add(path, `must be at most 24d, got ${describe(v)}`);
    return r;
  }
}

class Section {
  constructor(
    private readonly c: Checker,
    readonly path: Path,
    private readonly values: Record<string, unknown>,
    private readonly nulls: Set<string>,
  ) {}

  at(key: string): Path {
    return [...this.path, key];
  }

  get(key: string): unknown {
    return Object.prototype.hasOwnProperty.call(this.values, key) ? this.values[key] : undefined;
  }

  /** True if the key was written at all (even if its value was rejected as null). */
  written(key: string): boolean {
    return this.get(key) !== undefined || this.nulls.has(key);
  }

  required(key: string): unknown {
    const v = this.get(key);
    if (v === undefined && !this.nulls.has(key)) this.c.add(this.at(key), `is required`, "parent");
    return v;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------
// The rules

function checkDocument(value: unknown, sourceText: SourceText): { spec: JobSpec; issues: RawIssue[]; omitted: number } {
  const c = new Checker(sourceText);
  if (!isPlainObject(value)) {
    const what = Array.isArray(value) ? "a list" : describe(value);
    c.add([], `the top level must be a mapping of keys (name:, command:, ...), not ${what}`);
    return { spec: placeholderSpec(), issues: c.issues, omitted: 0 };
  }
  const spec = checkJob(c, value);
  return { spec, issues: c.issues, omitted: c.omitted };
}

/** Returned alongside issues only; never reaches a caller because issues make finish() throw. */
function placeholderSpec(): JobSpec {
  return {
    name: "", namespace: TASKFILE_DEFAULTS.namespace, type: "service", priority: PRIORITY_PROD, instances: 1, command: [], env: {},
    resources: { ...TASKFILE_DEFAULTS.resources }, constraints: [], ports: [], restart: { ...TASKFILE_DEFAULTS.restart },
    placement: { ...TASKFILE_DEFAULTS.placement },
  };
}

function checkJob(c: Checker, value: Record<string, unknown>): JobSpec {
  const spec = placeholderSpec();
  const s = c.section(value, [], SCHEMA_KEYS.job);
  if (!s) return spec;

  const nameV = s.required("name");
  if (nameV !== undefined) spec.name = checkName(c, nameV, s.at("name"), "name") ?? "";
  const nsV = s.get("namespace");
  if (nsV !== undefined) spec.namespace = checkName(c, nsV, s.at("namespace"), "namespace") ?? TASKFILE_DEFAULTS.namespace;

  // type: explicit, else batch when a schedule is given (cron runs complete), else service.
  const typeV = s.get("type");
  const explicitType = typeV === undefined ? undefined : c.oneOf(typeV, s.at("type"), JOB_TYPES);
  const scheduleV = s.get("schedule");
  spec.type = explicitType ?? (s.written("schedule") ? "batch" : "service");
  if (scheduleV !== undefined) {
    const sched = c.string(scheduleV, s.at("schedule"));
    if (sched !== undefined) {
      if (explicitType === "service") c.add(s.at("schedule"), "is for batch jobs only (set type: batch, or remove schedule)");
      const problem = checkCron(sched);
      if (problem) c.add(s.at("schedule"), problem);
      else spec.schedule = sched.trim().split(/\s+/).join(" ");
    }
  }

  const prioV = s.get("priority");
  spec.priority = spec.type === "service" ? PRIORITY_PROD : PRIORITY_BATCH;
  if (prioV !== undefined) spec.priority = checkPriority(c, prioV, s.at("priority")) ?? spec.priority;

  const instV = s.get("instances");
  if (instV !== undefined) spec.instances = c.int(instV, s.at("instances"), 1, LIMITS.maxInstances) ?? 1;

  const pkgV = s.get("package");
  if (pkgV !== undefined) {
    const ref = checkPackage(c, pkgV, s.at("package"));
    if (ref) {
      spec.package = ref.ref;
      spec.packageText = ref.text;
    }
  }

  const cmdV = s.required("command");
  if (cmdV !== undefined) spec.command = checkCommand(c, cmdV, s.at("command"));

  const envV = s.get("env");
  if (envV !== undefined) spec.env = checkEnv(c, envV, s.at("env"));

  const resV = s.get("resources");
  if (resV !== undefined) spec.resources = checkResources(c, resV, s.at("resources"));

  const isoV = s.get("isolation");
  if (isoV !== undefined) {
    const iso = c.oneOf(isoV, s.at("isolation"), ISOLATIONS);
    if (iso) spec.isolation = iso;
  }

  const consV = s.get("constraints");
  if (consV !== undefined) spec.constraints = checkConstraints(c, consV, s.at("constraints"));

  const portsV = s.get("ports");
  if (portsV !== undefined) spec.ports = checkPorts(c, portsV, s.at("ports"));

  const svcV = s.get("service");
  if (svcV !== undefined) {
    const svc = c.section(svcV, s.at("service"), SCHEMA_KEYS.service);
    if (svc) {
      const n = svc.required("name");
      if (n !== undefined) {
        const name = c.string(n, svc.at("name"));
        if (name !== undefined && name.length > LIMITS.maxServiceName) {
          c.add(svc.at("name"), `is ${name.length} characters long (at most ${LIMITS.maxServiceName}, as in DNS)`);
        } else if (name !== undefined && !SERVICE_NAME_RE.test(name)) {
          c.add(svc.at("name"), `${describe(name)} is not a valid service name: use lowercase letters, digits and "-", in dot-separated parts (e.g. web.frontend)`);
        } else if (name !== undefined) spec.service = { name };
      }
      // Naming registers the job's ports; with none there is nothing to register.
      if (!s.written("ports") || (Array.isArray(portsV) && portsV.length === 0)) {
        c.add(s.at("service"), "a service needs at least one port to register under its name (add ports:)");
      }
    }
  }

  const restartV = s.get("restart");
  if (restartV !== undefined) spec.restart = checkRestart(c, restartV, s.at("restart"));

  const notifyV = s.get("notify");
  if (notifyV !== undefined) {
    const n = checkNotify(c, notifyV, s.at("notify"));
    if (n) spec.notify = n;
  }

  const placeV = s.get("placement");
  if (placeV !== undefined) spec.placement = checkPlacement(c, placeV, s.at("placement"));

  return spec;
}

function checkName(c: Checker, v: unknown, path: Path, what: string): string | undefined {
  const name = c.string(v, path);
  if (name === undefined) return undefined;
  if (NAME_RE.test(name)) return name;
  const why = name.length === 0 ? "is empty" : name.length > 63 ? `is ${name.length} characters long (at most 63)` : `${describe(name)} is not a valid ${what}`;
  return c.add(path, `${why}: use 1-63 lowercase letters, digits and "-", not starting or ending with "-"`);
}

function checkPriority(c: Checker, v: unknown, path: Path): number | undefined {
  if (v === "prod") return PRIORITY_PROD;
  if (v === "batch") return PRIORITY_BATCH;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= LIMITS.maxPriority) return v;
  return c.add(path, `${describe(v)} is not a priority (use prod, batch, or an integer from 0 to ${LIMITS.maxPriority})`);
}

function checkPackage(c: Checker, v: unknown, path: Path): { ref: PackageRef; text: string } | undefined {
  const text = c.string(v, path);
  if (text === undefined) return undefined;
  const named = /^([^@]*)@([^@]*)$/.exec(text);
  if (named && PACKAGE_NAME_RE.test(named[1]!) && PACKAGE_VERSION_RE.test(named[2]!)) return { ref: { kind: "named", name: named[1]!, version: named[2]! }, text };
  const digest = PACKAGE_DIGEST_RE.exec(text);
  // Digests are compared as strings elsewhere (agent caches, blob store): normalize case once here.
  if (digest) return { ref: { kind: "digest", digest: `sha256:${digest[1]!.toLowerCase()}` }, text };
  const hint = text.startsWith("sha256:")
    ? " (a sha256 digest has exactly 64 hex digits)"
    : !text.includes("@")
      ? " (missing @version)"
      : named && (named[1]!.length > 128 || named[2]!.length > 128)
        ? " (name and version are at most 128 characters each)"
        : "";
  return c.add(path, `${describe(text)} is not a package reference: use name@version (e.g. webapp@1.2.0) or sha256:<64 hex digits>${hint}`);
}

function checkCommand(c: Checker, v: unknown, path: Path): string[] {
  if (typeof v === "string") {
    // argv only: a shell string would need a shell, and quoting rules would be a guess.
    const words = v.trim().split(/\s+/).filter((w) => w.length > 0);
    const shellish = /[|&;<>()$`\\"'*?]/.test(v);
    const example = `[${(shellish ? ["/bin/sh", "-c", v] : words).map((w) => JSON.stringify(w)).join(", ")}]`;
    c.add(path, `must be a list of arguments (argv), not a string: write command: ${example}`);
    return [];
  }
  const items = c.list(v, path, `["/bin/sleep", "30"]`);
  if (!items) return [];
  if (items.length === 0) {
    c.add(path, `must not be empty: give at least the program to run, e.g. ["/bin/sleep", "30"]`);
    return [];
  }
  const argv = items.map((item, i) => noNul(c, c.scalarString(item, [...path, i]), [...path, i]) ?? "");
  if (typeof items[0] === "string" && items[0].trim() === "") c.add([...path, 0], "the program (first argument) must not be empty");
  return argv;
}

/** Arguments and environment reach the kernel as C strings: a NUL would end them early (exec refuses them outright). */
function noNul(c: Checker, s: string | undefined, path: Path): string | undefined {
  if (s === undefined || !s.includes("\0")) return s;
  return c.add(path, `contains a NUL character (\\0), which a program's arguments and environment cannot hold`);
}

function checkEnv(c: Checker, v: unknown, path: Path): Record<string, string> {
  const env: Record<string, string> = {};
  if (!isPlainObject(v)) {
    c.add(path, `must be a mapping of NAME: value, got ${describe(v)}`);
    return env;
  }
  for (const [key, val] of Object.entries(v)) {
    const at = [...path, key];
    if (!ENV_KEY_RE.test(key)) {
      c.add(at, `${JSON.stringify(key)} is not a valid environment variable name (letters, digits and _, not starting with a digit)`, "key");
      continue;
    }
    if (key === "__proto__") {
      // Assigning it would change the prototype of the env object instead of adding a variable.
      c.add(at, `"__proto__" is not allowed as an environment variable name`, "key");
      continue;
    }
    if (key.startsWith("TORCA_")) {
      c.add(at, `${key} is reserved: Torca sets TORCA_* variables itself`, "key");
      continue;
    }
    if (val === null || val === undefined) {
      c.add(at, `has no value (use "" for an empty string)`);
      continue;
    }
    const s = noNul(c, c.scalarString(val, at), at);
    if (s !== undefined) env[key] = s;
  }
  return env;
}

function checkResources(c: Checker, v: unknown, path: Path): Resources {
  const res: Resources = { ...TASKFILE_DEFAULTS.resources };
  const s = c.section(v, path, SCHEMA_KEYS.resources);
  if (!s) return res;
  const cpuV = s.get("cpu");
  if (cpuV !== undefined) {
    const cpu = parseCpu(cpuV);
    if (typeof cpu === "string") c.add(s.at("cpu"), cpu);
    else if (cpu > LIMITS.maxCpu) c.add(s.at("cpu"), `must be at most ${LIMITS.maxCpu} cores, got ${cpu}`);
    else res.cpu = cpu;
  }
  const memV = s.get("memory");
  if (memV !== undefined) {
    const mem = c.size(memV, s.at("memory"));
    if (mem !== undefined && mem < LIMITS.minMemory) {
      c.add(s.at("memory"), `must be at least 4MiB, got ${mem} bytes${typeof memV === "number" ? " (plain numbers are bytes; write e.g. 256MiB)" : ""}`);
    } else if (mem !== undefined) res.memory = mem;
  }
  const diskV = s.get("disk");
  if (diskV !== undefined) res.disk = c.size(diskV, s.at("disk")) ?? res.disk;
  return res;
}

function checkConstraints(c: Checker, v: unknown, path: Path): Constraint[] {
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
          try {
            new RegExp(value);
          } catch (e) {
            c.add(s.at("value"), `is not a valid regular expression: ${e instanceof Error ? e.message : String(e)}`);
            value = undefined;
          }
        }
      }
    }
    if (attribute !== undefined && operator !== undefined && value !== undefined) out.push({ attribute, operator, value });
  });
  return out;
}

function checkPorts(c: Checker, v: unknown, path: Path): PortSpec[] {
  const items = c.list(v, path, `[{ name: http }]`);
  if (!items) return [];
  const out: PortSpec[] = [];
  const names = new Map<string, number>();
  const statics = new Map<number, number>();
  items.forEach((item, i) => {
    const s = c.section(item, [...path, i], SCHEMA_KEYS.port);
    if (!s) return;
    const nameV = s.required("name");
    let name = nameV === undefined ? undefined : c.string(nameV, s.at("name"));
    if (name !== undefined && !PORT_NAME_RE.test(name)) {
      c.add(s.at("name"), `${describe(name)} is not a valid port name: start with a lowercase letter, then up to 30 lowercase letters, digits or _ (it becomes TORCA_PORT_<NAME>)`);
      name = undefined;
    } else if (name !== undefined && names.has(name)) {
      c.add(s.at("name"), `duplicate port name "${name}" (also used by ports[${names.get(name)}])`);
      name = undefined;
    } else if (name !== undefined) names.set(name, i);
    const port: PortSpec = { name: name ?? "" };

    const staticV = s.get("static");
    if (staticV !== undefined) {
      const p = c.int(staticV, s.at("static"), 1, 65535);
      if (p !== undefined && statics.has(p)) c.add(s.at("static"), `static port ${p} is already used by ports[${statics.get(p)}]`);
      else if (p !== undefined) {
        statics.set(p, i);
        port.static = p;
      }
    }
    const checkV = s.get("check");
    if (checkV !== undefined) {
      const hc = checkHealth(c, checkV, s.at("check"));
      if (hc) port.check = hc;
    }
    out.push(port);
  });
  return out;
}

function checkHealth(c: Checker, v: unknown, path: Path): HealthCheck | undefined {
  const s = c.section(v, path, SCHEMA_KEYS.check);
  if (!s) return undefined;
  const typeV = s.required("type");
  const type = typeV === undefined ? undefined : c.oneOf(typeV, s.at("type"), CHECK_TYPES);
  const d = TASKFILE_DEFAULTS.check;
  const hc: HealthCheck = { type: type ?? "tcp", intervalMs: d.intervalMs, timeoutMs: d.timeoutMs, failures: d.failures };

  const pathV = s.get("path");
  if (type === "http") hc.path = d.path;
  if (pathV !== undefined) {
    const p = c.string(pathV, s.at("path"));
    if (p !== undefined && type === "tcp") c.add(s.at("path"), `is only for http checks (this check is tcp)`);
    else if (p !== undefined && !p.startsWith("/")) c.add(s.at("path"), `must start with "/", got ${describe(p)}`);
    else if (p !== undefined) hc.path = p;
  }

  const intervalV = s.get("interval");
  let intervalOk = true;
  if (intervalV !== undefined) {
    const ms = c.duration(intervalV, s.at("interval"));
    if (ms === 0) c.add(s.at("interval"), "must be greater than 0");
    if (ms === undefined || ms === 0) intervalOk = false;
    else hc.intervalMs = ms;
  }
  const timeoutV = s.get("timeout");
  let timeoutOk = true;
  if (timeoutV !== undefined) {
    const ms = c.duration(timeoutV, s.at("timeout"));
    if (ms === 0) c.add(s.at("timeout"), "must be greater than 0");
    if (ms === undefined || ms === 0) timeoutOk = false;
    else hc.timeoutMs = ms;
  }
  // A timeout as long as the interval would let probes pile up; point at whichever the user wrote.
  if (intervalOk && timeoutOk && hc.timeoutMs >= hc.intervalMs) {
    if (timeoutV !== undefined) c.add(s.at("timeout"), `must be less than interval (${hc.intervalMs}ms), got ${hc.timeoutMs}ms`);
    else c.add(s.at("interval"), `must be greater than timeout (${hc.timeoutMs}ms, the default), got ${hc.intervalMs}ms`);
  }
  const failV = s.get("failures");
  if (failV !== undefined) hc.failures = c.int(failV, s.at("failures"), 1, 1000) ?? hc.failures;
  return hc;
}

function checkRestart(c: Checker, v: unknown, path: Path): RestartPolicy {
  const r: RestartPolicy = { ...TASKFILE_DEFAULTS.restart };
  const s = c.section(v, path, SCHEMA_KEYS.restart);
  if (!s) return r;
  const attemptsV = s.get("attempts");
  if (attemptsV !== undefined) r.attempts = c.int(attemptsV, s.at("attempts"), 0, 1_000_000) ?? r.attempts;
  const delayV = s.get("delay");
  let delayOk = true;
  if (delayV !== undefined) {
    const ms = c.duration(delayV, s.at("delay"));
    if (ms === undefined) delayOk = false;
    else r.delayMs = ms;
  }
  const backoffV = s.get("backoff");
  if (backoffV !== undefined) {
    if (typeof backoffV !== "number" || !Number.isFinite(backoffV)) c.add(s.at("backoff"), `must be a number (the delay multiplier, e.g. 2), got ${describe(backoffV)}`);
    else if (backoffV < 1) c.add(s.at("backoff"), `must be at least 1 (1 = constant delay), got ${backoffV}`);
    else r.backoff = backoffV;
  }
  const maxV = s.get("maxDelay");
  if (maxV !== undefined) {
    const ms = c.duration(maxV, s.at("maxDelay"));
    if (ms !== undefined && delayOk && ms < r.delayMs) c.add(s.at("maxDelay"), `must be at least delay (${r.delayMs}ms), got ${ms}ms`);
    else if (ms !== undefined) r.maxDelayMs = ms;
  } else if (delayOk && r.delayMs > r.maxDelayMs) {
    // A delay above the default cap: raise the cap rather than silently shortening the delay.
    r.maxDelayMs = r.delayMs;
  }
  return r;
}

function checkNotify(c: Checker, v: unknown, path: Path): NotifySpec | undefined {
  const s = c.section(v, path, SCHEMA_KEYS.notify);
  if (!s) return undefined;
  const n: NotifySpec = { email: [], sms: [], on: [...TASKFILE_DEFAULTS.notifyOn] };
  const emailV = s.get("email");
  if (emailV !== undefined) {
    const items = c.list(emailV, s.at("email"), `[ops@example.com]`);
    items?.forEach((item, i) => {
      const e = c.string(item, [...s.at("email"), i]);
      if (e !== undefined && !EMAIL_RE.test(e)) c.add([...s.at("email"), i], `${describe(e)} is not an email address`);
      else if (e !== undefined) n.email.push(e);
    });
  }
  const smsV = s.get("sms");
  if (smsV !== undefined) {
    const items = c.list(smsV, s.at("sms"), `["+15550100"]`);
    items?.forEach((item, i) => {
      const at = [...s.at("sms"), i];
      // Unquoted numbers in YAML arrive as numbers; a leading + needs quotes, so accept both.
      const num = typeof item === "number" ? c.scalarString(item, at) : c.string(item, at);
      if (num !== undefined && !SMS_RE.test(num)) c.add(at, `${describe(num)} is not a phone number (digits only, optional leading +, 6-15 digits)`);
      else if (num !== undefined) n.sms.push(num);
    });
  }
  const onV = s.get("on");
  if (onV !== undefined) {
    const items = c.list(onV, s.at("on"), `[failed, lost]`);
    if (items) {
      n.on = [];
      items.forEach((item, i) => {
        const a = c.oneOf(item, [...s.at("on"), i], ALERTS);
        if (a !== undefined && !n.on.includes(a)) n.on.push(a);
      });
      if (items.length === 0) c.add(s.at("on"), `must list at least one event (${ALERTS.join(", ")})`);
    }
  }
  // Count what was written, valid or not, so one mistake is not reported twice.
  const written = (key: string, val: unknown): number => (Array.isArray(val) ? val.length : s.written(key) ? 1 : 0);
  if (written("email", emailV) + written("sms", smsV) === 0) c.add(path, "needs at least one email or sms recipient");
  return n;
}

function checkPlacement(c: Checker, v: unknown, path: Path): PlacementPolicy {
  const p: PlacementPolicy = { ...TASKFILE_DEFAULTS.placement };
  const s = c.section(v, path, SCHEMA_KEYS.placement);
  if (!s) return p;
  const stratV = s.get("strategy");
  if (stratV !== undefined) p.strategy = c.oneOf(stratV, s.at("strategy"), STRATEGIES) ?? p.strategy;
  const maxV = s.get("maxPerNode");
  if (maxV !== undefined) {
    const m = c.int(maxV, s.at("maxPerNode"), 1, LIMITS.maxInstances);
    if (m !== undefined) p.maxPerNode = m;
  }
  return p;
}

// ---------------------------------------------------------------------------
// Cron

/**
 * Validates the cron subset we promise: 5 fields (minute hour day-of-month
 * month day-of-week) or 6 (seconds first); each field a comma list of `*`,
 * `N`, `N-M`, optionally `/step`; month and weekday names (jan, mon-fri).
 * Everything accepted here is accepted by node-schedule (cron-parser), which
 * also accepts more (L, #, ?, N/step); keeping to the common subset means a
 * schedule never depends on one library's extensions. Returns a message or
 * undefined when valid.
 */
export function checkCron(expr: string): string | undefined {
  const fields = expr.trim().split(/\s+/).filter((f) => f.length > 0);
  if (fields.length !== 5 && fields.length !== 6) {
    return `${describe(expr)} is not a cron expression: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${fields.length}`;
  }
  const specs = fields.length === 6 ? [CRON_FIELDS.second, ...CRON_FIELDS.five] : CRON_FIELDS.five;
  const sets: Set<number>[] = [];
  for (let i = 0; i < fields.length; i++) {
    const r = cronField(fields[i]!, specs[i]!);
    if (typeof r === "string") return `${specs[i]!.label} field ${JSON.stringify(fields[i])}: ${r}`;
    sets.push(r);
  }
  // Standard cron ORs day-of-month and day-of-week when both are restricted, so only a
  // restricted day-of-month with an unrestricted day-of-week can make a schedule that never fires.
  const off = fields.length === 6 ? 1 : 0;
  const dom = fields[off + 2]!;
  const dow = fields[off + 4]!;
  if (dom !== "*" && (dow === "*" || dow === "?")) {
    const days = sets[off + 2]!;
    const months = sets[off + 3]!;
    const fires = [...months].some((m) => [...days].some((d) => d <= DAYS_IN_MONTH[m - 1]!));
    if (!fires) return `${describe(expr)} never fires: none of the months has those days`;
  }
  return undefined;
}

interface CronFieldSpec {
  label: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** Value of names[0]. */
  namesBase?: number;
}

const CRON_FIELDS = {
  second: { label: "seconds", min: 0, max: 59 },
  five: [
    { label: "minute", min: 0, max: 59 },
    { label: "hour", min: 0, max: 23 },
    { label: "day-of-month", min: 1, max: 31 },
    { label: "month", min: 1, max: 12, names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], namesBase: 1 },
    // 7 is Sunday too, as in most crons.
    { label: "day-of-week", min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"], namesBase: 0 },
  ],
} satisfies { second: CronFieldSpec; five: CronFieldSpec[] };

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function cronValue(text: string, spec: CronFieldSpec): number | string {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n < spec.min || n > spec.max ? `${n} is out of range ${spec.min}-${spec.max}` : n;
  }
  const idx = spec.names?.indexOf(text.toLowerCase()) ?? -1;
  if (idx >= 0) return idx + (spec.namesBase ?? 0);
  return `${JSON.stringify(text)} is not a number${spec.names ? ` or a name (${spec.names[0]}, ${spec.names[1]}, ...)` : ""}`;
}

function cronField(field: string, spec: CronFieldSpec): Set<number> | string {
  const out = new Set<number>();
  for (const part of field.split(",")) {
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(part);
    if (!m) return `${JSON.stringify(part)} is not *, N, N-M or one of those with /step`;
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (step < 1) return "step must be at least 1";
    let lo: number;
    let hi: number;
    if (m[1] === "*") {
      lo = spec.min;
      hi = spec.max;
    } else {
      const range = m[1]!.split("-");
      if (range.length > 2) return `${JSON.stringify(part)} is not *, N, N-M or one of those with /step`;
      const a = cronValue(range[0]!, spec);
      if (typeof a === "string") return a;
      if (range.length === 1 && m[2] !== undefined) return `${JSON.stringify(part)}: a step needs a range (use */${step} or ${a}-${spec.max}/${step})`;
      const b = range.length === 2 ? cronValue(range[1]!, spec) : a;
      if (typeof b === "string") return b;
      if (a > b) return `range ${m[1]} goes backwards`;
      lo = a;
      hi = b;
    }
    for (let x = lo; x <= hi; x += step) out.add(x);
  }
  return out;
}

// ---------------------------------------------------------------------------
// YAML positions

interface Located {
  node: unknown;
  keyNode: unknown;
  /** How many path segments were resolved. */
  depth: number;
}

/** A key as toJS() names it in the object, so paths from values find their nodes: null is "", a collection its flow text. */
function keyText(key: unknown): string {
  if (key === null || key === undefined) return "";
  if (isScalar(key)) return key.value === null ? "" : typeof key.value === "object" ? JSON.stringify(key.value) : String(key.value);
  if (isCollection(key)) return stringify(key, { collectionStyle: "flow", lineWidth: 0 }).trimEnd();
  return String(key);
}

const pairIndexes = new WeakMap<YAMLMap, Map<string, Pair>>();

/** A mapping's pairs by key text (the first of duplicates), built once: lookups per issue and per value stay O(1) in huge mappings. */
function pairsByKey(map: YAMLMap): Map<string, Pair> {
  let index = pairIndexes.get(map);
  if (!index) {
    index = new Map();
    for (const pair of map.items) {
      const k = keyText(pair.key);
      if (!index.has(k)) index.set(k, pair);
    }
    pairIndexes.set(map, index);
  }
  return index;
}

function walk(doc: Document, path: Path): Located {
  let node: unknown = doc.contents;
  let keyNode: unknown = undefined;
  let depth = 0;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = pairsByKey(node).get(String(seg));
      if (!pair) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      keyNode = undefined;
      node = node.items[seg];
    } else break;
    depth++;
  }
  return { node, keyNode, depth };
}

function rangeStart(n: unknown): number | undefined {
  return isNode(n) && n.range ? n.range[0] : undefined;
}

function locate(doc: Document, lc: LineCounter, issue: RawIssue): { line: number; column: number } | undefined {
  const target = issue.anchor === "parent" ? issue.path.slice(0, -1) : issue.path;
  const found = walk(doc, target);
  let offset: number | undefined;
  const complete = found.depth === target.length;
  if (complete && issue.anchor === "key") offset = rangeStart(found.keyNode);
  if (offset === undefined && complete) {
    // An empty value (`instances:`) has a zero-width node at the end of the line; the key reads better.
    const emptyScalar = isScalar(found.node) && found.node.value === null && !found.node.source;
    offset = emptyScalar ? rangeStart(found.keyNode) : rangeStart(found.node);
  }
  if (offset === undefined) {
    const partial = walk(doc, target.slice(0, found.depth));
    offset = rangeStart(partial.node) ?? rangeStart(doc.contents);
  }
  if (offset === undefined) return undefined;
  const pos = lc.linePos(offset);
  return { line: pos.line, column: pos.col };
}

function plainScalarSource(doc: Document, path: Path): string | undefined {
  const { node, depth } = walk(doc, path);
  if (depth !== path.length || !isScalar(node) || node.type !== "PLAIN") return undefined;
  return typeof node.source === "string" ? node.source : undefined;
}

interface TreeFacts {
  /** Second and later occurrences of a key in one mapping, where they are written. */
  duplicates: { path: PathSeg[]; offset: number }[];
  /** The first collection nested deeper than allowed. */
  tooDeep?: { path: PathSeg[]; offset: number };
  aliases: number;
  firstAlias?: number;
}

/**
 * One iterative pass over the parsed tree (an explicit stack: depth is what is
 * being checked, so recursion is not an option). Aliases are counted, not followed.
 */
function inspectTree(doc: Document): TreeFacts {
  const facts: TreeFacts = { duplicates: [], aliases: 0 };
  const stack: { node: unknown; path: PathSeg[]; depth: number }[] = [{ node: doc.contents, path: [], depth: 1 }];
  while (stack.length > 0) {
    const { node, path, depth } = stack.pop()!;
    if (isAlias(node)) {
      facts.aliases++;
      const offset = rangeStart(node);
      if (offset !== undefined && (facts.firstAlias === undefined || offset < facts.firstAlias)) facts.firstAlias = offset;
      continue;
    }
    if (!isMap(node) && !isSeq(node)) continue;
    if (depth > LIMITS.maxNesting) {
      const offset = rangeStart(node) ?? 0;
      if (!facts.tooDeep || offset < facts.tooDeep.offset) facts.tooDeep = { path, offset };
      continue;
    }
    if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push({ node: item, path: [...path, i], depth: depth + 1 }));
      continue;
    }
    // The library's rule for "the same key": equal scalar values (keys that are collections never are).
    const seen = new Set<unknown>();
    for (const pair of node.items) {
      const key = keyText(pair.key);
      if (isScalar(pair.key) || pair.key === null) {
        const identity = isScalar(pair.key) ? pair.key.value : null;
        if (seen.has(identity)) facts.duplicates.push({ path: [...path, key], offset: rangeStart(pair.key) ?? rangeStart(node) ?? 0 });
        seen.add(identity);
      } else stack.push({ node: pair.key, path: [...path, key], depth: depth + 1 });
      stack.push({ node: pair.value, path: [...path, key], depth: depth + 1 });
    }
  }
  return facts;
}

function stripLocation(message: string): string {
  return message.replace(/ at line \d+, column \d+:?[\s\S]*$/, "").trim();
}

function jsonSyntaxIssue(text: string, e: unknown): InputIssue {
  const raw = e instanceof Error ? e.message : String(e);
  const m = /at position (\d+)/.exec(raw);
  const message = `invalid JSON: ${raw.replace(/\s*in JSON at position \d+.*$/s, "").replace(/\s*\(line \d+ column \d+\)$/, "")}`;
  if (!m) {
    // "Unexpected end of JSON input" has no position: the problem is at the end.
    return { field: "", message, ...endPosition(text) };
  }
  const offset = Number(m[1]);
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return { field: "", message, line, column };
}

function endPosition(text: string): { line: number; column: number } {
  const lines = text.split("\n");
  return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}
