import { pino, type Logger } from "pino";

export type { Logger };

/**
 * The one structured logger. JSON lines to stderr (stdout stays free for CLI
 * output); level from TORCA_LOG_LEVEL (default info, "silent" in tests unless set).
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  const level = process.env.TORCA_LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? "silent" : "info");
  return pino({ name, level, base: { pid: process.pid, ...bindings } }, pino.destination({ dest: 2, sync: true }));
}
