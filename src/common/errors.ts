/**
 * The one error hierarchy of Torca. Every error carries a stable machine code,
 * the HTTP status it maps to at the API edge, and the CLI exit code it maps to.
 * Inside the system, code throws these; only the HTTP edge turns them into
 * responses and only the CLI turns them into exit codes.
 */
export type ErrorCode =
  | "invalid_input"
  | "invalid_config"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "not_primary"
  | "stale_epoch"
  | "unplaceable"
  | "payload_too_large"
  | "unavailable"
  | "coordination"
  | "integrity"
  | "unsafe_archive"
  | "driver"
  | "internal";

export interface ErrorContext {
  /** Dotted path of the offending field, e.g. `resources.memory`. */
  field?: string;
  /** 1-based line/column in the source file, when the input was YAML/JSON text. */
  line?: number;
  column?: number;
  [key: string]: unknown;
}

export class TorcaError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly exitCode: number;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, opts: { status?: number; exitCode?: number; context?: ErrorContext; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = opts.status ?? 500;
    this.exitCode = opts.exitCode ?? 1;
    this.context = opts.context ?? {};
  }

  get field(): string | undefined {
    return this.context.field;
  }

  toJSON(): { code: ErrorCode; message: string; field?: string; line?: number; column?: number; issues?: unknown } {
    const out: { code: ErrorCode; message: string; field?: string; line?: number; column?: number; issues?: unknown } = { code: this.code, message: this.message };
    if (this.context.field !== undefined) out.field = this.context.field;
    if (this.context.line !== undefined) out.line = this.context.line;
    if (this.context.column !== undefined) out.column = this.context.column;
    if (this.context.issues !== undefined) out.issues = this.context.issues;
    return out;
  }
}

/** One problem in an input document. */
export interface InputIssue {
  field: string;
  message: string;
  line?: number;
  column?: number;
}

export function formatIssue(i: InputIssue, source?: string): string {
  const where = i.line !== undefined ? `${source ? source + ":" : "line "}${i.line}${i.column !== undefined ? ":" + i.column : ""}: ` : source ? `${source}: ` : "";
  return `${where}${i.field ? i.field + ": " : ""}${i.message}`;
}

/** Bad user input (task file, request body, CLI argument). HTTP 400, exit 2. */
export class ValidationError extends TorcaError {
  readonly issues: InputIssue[];
  constructor(issues: InputIssue[], source?: string) {
    const first = issues[0] ?? { field: "", message: "invalid input" };
    const message = issues.map((i) => formatIssue(i, source)).join("\n");
    super("invalid_input", message, {
      status: 400,
      exitCode: 2,
      context: { field: first.field || undefined, line: first.line, column: first.column, issues: issues.length > 1 ? issues : undefined },
    });
    this.issues = issues;
  }
}

export class ConfigError extends TorcaError {
  constructor(message: string, field?: string) {
    super("invalid_config", message, { status: 500, exitCode: 2, context: { field } });
  }
}

export class UnauthorizedError extends TorcaError {
  constructor(message = "missing or invalid bearer token") {
    super("unauthorized", message, { status: 401, exitCode: 1 });
  }
}

export class ForbiddenError extends TorcaError {
  constructor(message: string) {
    super("forbidden", message, { status: 403, exitCode: 1 });
  }
}

export class NotFoundError extends TorcaError {
  constructor(what: string, id: string) {
    super("not_found", `${what} ${JSON.stringify(id)} not found`, { status: 404, exitCode: 1, context: { what, id } });
  }
}

export class MethodNotAllowedError extends TorcaError {
  constructor(method: string, path: string, allowed: string | undefined) {
    super("method_not_allowed", `${method} is not allowed on ${path}${allowed ? ` (allowed: ${allowed})` : ""}`, { status: 405, exitCode: 2, context: { method, allowed } });
  }
}

export class ConflictError extends TorcaError {
  constructor(message: string, context: ErrorContext = {}) {
    super("conflict", message, { status: 409, exitCode: 1, context });
  }
}

/** This manager is a backup; the write belongs to the primary at `primaryUrl`. */
export class NotPrimaryError extends TorcaError {
  constructor(readonly primaryUrl: string | undefined) {
    super("not_primary", primaryUrl ? `not the primary; the primary is ${primaryUrl}` : "not the primary and no primary is elected right now", {
      status: primaryUrl ? 307 : 503,
      exitCode: 1,
      context: { primaryUrl },
    });
  }
}

/** A request fenced off because it carries an epoch lower than one already seen. */
export class StaleEpochError extends TorcaError {
  constructor(readonly got: number, readonly seen: number) {
    super("stale_epoch", `stale epoch ${got}: epoch ${seen} has been seen`, { status: 409, exitCode: 1, context: { got, seen } });
  }
}

export class UnplaceableError extends TorcaError {
  constructor(message: string, context: ErrorContext = {}) {
    super("unplaceable", message, { status: 409, exitCode: 3, context });
  }
}

export class PayloadTooLargeError extends TorcaError {
  constructor(limit: number) {
    super("payload_too_large", `request body exceeds ${limit} bytes`, { status: 413, exitCode: 2, context: { limit } });
  }
}

export class UnavailableError extends TorcaError {
  constructor(message: string, cause?: unknown) {
    super("unavailable", message, { status: 503, exitCode: 1, cause });
  }
}

/** A ZooKeeper operation failed; `zkCode` is the binding's return code (e.g. -101 no node). */
export class CoordinationError extends TorcaError {
  constructor(readonly op: string, readonly path: string, readonly zkCode: number, message: string) {
    super("coordination", `zookeeper ${op} ${path}: ${message} (${zkCode})`, { status: 503, exitCode: 1, context: { op, path, zkCode } });
  }
}

export class IntegrityError extends TorcaError {
  constructor(message: string, context: ErrorContext = {}) {
    super("integrity", message, { status: 502, exitCode: 1, context });
  }
}

/** An archive breaking the safe-extraction rules; `entry` names the first bad entry. HTTP 422 (a push refused), exit 2. */
export class UnsafeArchiveError extends TorcaError {
  constructor(message: string, entry?: string) {
    super("unsafe_archive", message, { status: 422, exitCode: 2, context: { entry } });
  }
}

export class DriverError extends TorcaError {
  constructor(message: string, context: ErrorContext = {}, cause?: unknown) {
    super("driver", message, { status: 500, exitCode: 1, context, cause });
  }
}

export function isTorcaError(e: unknown): e is TorcaError {
  return e instanceof TorcaError;
}

/** Normalizes anything thrown into a TorcaError (unknown errors become `internal`). */
export function toTorcaError(e: unknown): TorcaError {
  if (e instanceof TorcaError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new TorcaError("internal", msg, { status: 500, cause: e });
}
