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
  | "idempotency_key_reused"
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

/** The CLI exit code of each error code: 2 for input the user must fix, 3 for work that fits nowhere, 1 otherwise. */
const EXIT_CODES: Readonly<Record<ErrorCode, number>> = Object.freeze({
  invalid_input: 2,
  invalid_config: 2,
  unauthorized: 1,
  forbidden: 1,
  not_found: 1,
  method_not_allowed: 2,
  conflict: 1,
  not_primary: 1,
  stale_epoch: 1,
  unplaceable: 3,
  payload_too_large: 2,
  unavailable: 1,
  coordination: 1,
  integrity: 1,
  unsafe_archive: 2,
  idempotency_key_reused: 2,
  driver: 1,
  internal: 1,
});

/** The body of the error envelope `{error: …}`: what the HTTP edge sends and the HTTP client reads back. */
export interface WireError {
  code: ErrorCode;
  message: string;
  field?: string;
  line?: number;
  column?: number;
  /** Every issue, when a ValidationError has more than one. */
  issues?: InputIssue[];
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
    // A code from a newer server that this build does not know exits 1.
    this.exitCode = opts.exitCode ?? EXIT_CODES[code] ?? 1;
    this.context = opts.context ?? {};
  }

  get field(): string | undefined {
    return this.context.field;
  }

  toJSON(): WireError {
    const out: WireError = { code: this.code, message: this.message };
    if (this.context.field !== undefined) out.field = this.context.field;
    if (this.context.line !== undefined) out.line = this.context.line;
    if (this.context.column !== undefined) out.column = this.context.column;
    if (this.context.issues !== undefined) out.issues = this.context.issues as InputIssue[];
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
      context: { field: first.field || undefined, line: first.line, column: first.column, issues: issues.length > 1 ? issues : undefined },
    });
    this.issues = issues;
  }
}

export class ConfigError extends TorcaError {
  constructor(message: string, field?: string) {
    super("invalid_config", message, { status: 500, context: { field } });
  }
}

export class UnauthorizedError extends TorcaError {
  constructor(message = "missing or invalid bearer token") {
    super("unauthorized", message, { status: 401 });
  }
}

export class ForbiddenError extends TorcaError {
  /** With a `field`, the refusal is of a value of the input (e.g. `user: root`): the CLI exits 2, as for invalid input. */
  constructor(message: string, context: ErrorContext = {}) {
    super("forbidden", message, { status: 403, context, ...(context.field ? { exitCode: 2 } : {}) });
  }
}

export class NotFoundError extends TorcaError {
  constructor(what: string, id: string) {
    super("not_found", `${what} ${JSON.stringify(id)} not found`, { status: 404, context: { what, id } });
  }
}

export class MethodNotAllowedError extends TorcaError {
  constructor(method: string, path: string, allowed: string | undefined) {
    super("method_not_allowed", `${method} is not allowed on ${path}${allowed ? ` (allowed: ${allowed})` : ""}`, { status: 405, context: { method, allowed } });
  }
}

export class ConflictError extends TorcaError {
  constructor(message: string, context: ErrorContext = {}) {
    super("conflict", message, { status: 409, context });
  }
}

/** This manager is a backup; the write belongs to the primary at `primaryUrl`. */
export class NotPrimaryError extends TorcaError {
  /** `cutOff`: this manager has no ZooKeeper session, so it cannot tell who is primary now. */
  constructor(
    readonly primaryUrl: string | undefined,
    cutOff = false,
  ) {
    const none = cutOff ? "not the primary: this manager has no ZooKeeper session now (cut off or reconnecting); another manager may be primary" : "not the primary and no primary is elected right now";
    super("not_primary", primaryUrl ? `not the primary; the primary is ${primaryUrl}` : none, {
      status: primaryUrl ? 307 : 503,
      context: { primaryUrl },
    });
  }
}

/**
 * A request fenced off because it carries an epoch lower than one already seen.
 * `got` and `seen` are unknown on an error rebuilt from the wire (the envelope carries the message only).
 */
export class StaleEpochError extends TorcaError {
  readonly got: number | undefined;
  readonly seen: number | undefined;
  constructor(got: number, seen: number) {
    super("stale_epoch", `stale epoch ${got}: epoch ${seen} has been seen`, { status: 409, context: { got, seen } });
    this.got = got;
    this.seen = seen;
  }
}

export class UnplaceableError extends TorcaError {
  constructor(message: string, context: ErrorContext = {}) {
    super("unplaceable", message, { status: 409, context });
  }
}

export class PayloadTooLargeError extends TorcaError {
  constructor(limit: number) {
    super("payload_too_large", `request body exceeds ${limit} bytes`, { status: 413, context: { limit } });
  }
}

export class UnavailableError extends TorcaError {
  constructor(message: string, cause?: unknown) {
    super("unavailable", message, { status: 503, cause });
  }
}

/**
 * A ZooKeeper operation failed; `zkCode` is the binding's return code (e.g. -101 no node).
 * op, path and zkCode are unknown on an error rebuilt from the wire.
 */
export class CoordinationError extends TorcaError {
  readonly op: string | undefined;
  readonly path: string | undefined;
  readonly zkCode: number | undefined;
  constructor(op: string, path: string, zkCode: number, message: string) {
    super("coordination", `zookeeper ${op} ${path}: ${message} (${zkCode})`, { status: 503, context: { op, path, zkCode } });
    this.op = op;
    this.path = path;
    this.zkCode = zkCode;
  }
}

export class IntegrityError extends TorcaError {
  constructor(message: string, context: ErrorContext = {}) {
    super("integrity", message, { status: 502, context });
  }
}

/** An archive breaking the safe-extraction rules; `entry` names the first bad entry. HTTP 422 (a push refused), exit 2. */
export class UnsafeArchiveError extends TorcaError {
  constructor(message: string, entry?: string) {
    super("unsafe_archive", message, { status: 422, context: { entry } });
  }
}

/** An Idempotency-Key already answered a different request body (HTTP 422). */
export class IdempotencyKeyReusedError extends TorcaError {
  constructor(key: string) {
    super("idempotency_key_reused", `Idempotency-Key ${JSON.stringify(key)} was used for a different request body; use a new key for a new submission`, { status: 422, context: { field: "Idempotency-Key", key } });
  }
}

export class DriverError extends TorcaError {
  constructor(message: string, context: ErrorContext = {}, cause?: unknown) {
    super("driver", message, { status: 500, context, cause });
  }
}

/** A broken invariant inside Torca (a bug, not bad input): HTTP 500. */
export class InternalError extends TorcaError {
  constructor(message: string, cause?: unknown) {
    super("internal", message, { status: 500, cause });
  }
}

export function isTorcaError(e: unknown): e is TorcaError {
  return e instanceof TorcaError;
}

/** Normalizes anything thrown into a TorcaError (unknown errors become `internal`, keeping the original as cause). */
export function toTorcaError(e: unknown): TorcaError {
  if (e instanceof TorcaError) return e;
  return new InternalError(e instanceof Error ? e.message : String(e), e);
}

/** The class of each wire code: the HTTP client rebuilds a server's error as this class, so `instanceof` holds across the wire. */
export const ERROR_CLASSES: Readonly<Record<ErrorCode, new (...args: never[]) => TorcaError>> = Object.freeze({
  invalid_input: ValidationError,
  invalid_config: ConfigError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  method_not_allowed: MethodNotAllowedError,
  conflict: ConflictError,
  not_primary: NotPrimaryError,
  stale_epoch: StaleEpochError,
  unplaceable: UnplaceableError,
  payload_too_large: PayloadTooLargeError,
  unavailable: UnavailableError,
  coordination: CoordinationError,
  integrity: IntegrityError,
  unsafe_archive: UnsafeArchiveError,
  idempotency_key_reused: IdempotencyKeyReusedError,
  driver: DriverError,
  internal: InternalError,
});

/**
 * Rebuilds an error a Torca server sent as an instance of the class its code
 * names, with the server's code, message, status, field/line/column and
 * issues; `context` adds what the client knows (the URL). A code this build
 * does not know stays a plain TorcaError with that code. Only the envelope
 * crosses the wire, so class fields beyond it (a StaleEpochError's epochs, a
 * CoordinationError's zkCode, a NotPrimaryError's primaryUrl: a 307 is
 * followed, or with redirects off it is not an error) are undefined on the
 * rebuilt error.
 */
export function errorFromWire(wire: WireError, status: number, context: ErrorContext = {}): TorcaError {
  const cls = Object.hasOwn(ERROR_CLASSES, wire.code) ? ERROR_CLASSES[wire.code] : TorcaError;
  const full: ErrorContext = { ...context, field: wire.field, line: wire.line, column: wire.column, issues: wire.issues };
  // Runs only TorcaError's constructor (the subclasses' constructors take their own arguments, not the envelope), with the subclass as new.target.
  const exitCode = wire.code === "forbidden" && wire.field ? 2 : undefined;
  const err = Reflect.construct(TorcaError, [wire.code, wire.message, { status, context: full, exitCode }], cls) as TorcaError;
  if (err instanceof ValidationError) {
    const issues = wire.issues ?? [{ field: wire.field ?? "", message: wire.message, line: wire.line, column: wire.column }];
    Object.defineProperty(err, "issues", { value: issues, enumerable: true });
  }
  return err;
}
