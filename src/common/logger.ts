import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/**
 * The one structured logger. JSON lines to stderr (stdout stays free for CLI
 * output); level from TORCA_LOG_LEVEL (default info, "silent" in tests unless set).
 *
 * Errors are logged one way: `log.warn({ err }, "what failed")` with the thrown
 * value itself, never its message or String(e), so pino's `err` serializer
 * keeps type, message, stack and cause chain.
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}, opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env.TORCA_LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? "silent" : "info");
  return pino({ name, level, base: { pid: process.pid, ...bindings }, serializers: { err: pino.stdSerializers.err } }, opts.destination ?? pino.destination({ dest: 2, sync: true }));
}

/** For tests that read what was logged: where the lines go and the level, instead of stderr and TORCA_LOG_LEVEL. */
export interface LoggerOptions {
  destination?: DestinationStream;
  level?: string;
}
