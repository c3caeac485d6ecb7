import { got, HTTPError, RequestError, type Got, type OptionsInit } from "got";
import { TorcaError, UnavailableError, type ErrorCode } from "./errors.js";

/**
 * The one HTTP client wrapper (got): bearer token, timeouts, bounded retries on
 * idempotent methods, and Torca's error envelope `{error: {code, message, field}}`
 * turned back into a TorcaError so callers see one error hierarchy.
 */
export interface HttpClientOptions {
  baseUrl?: string;
  token?: string;
  /** Whole-request timeout in ms (default 10 s). */
  timeoutMs?: number;
  /** Retries for idempotent requests and network errors (default 2). */
  retries?: number;
  /** Follow 307 redirects from a backup manager to the primary (default true). */
  followRedirect?: boolean;
}

export function createHttpClient(opts: HttpClientOptions = {}): Got {
  const options: OptionsInit = {
    timeout: { request: opts.timeoutMs ?? 10_000 },
    retry: {
      limit: opts.retries ?? 2,
      methods: ["GET", "PUT", "HEAD", "DELETE", "OPTIONS"],
      statusCodes: [502, 503, 504],
      errorCodes: ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EAI_AGAIN"],
      backoffLimit: 1000,
    },
    followRedirect: opts.followRedirect ?? true,
    // 307 keeps method and body, which is what a write forwarded to the primary needs.
    methodRewriting: false,
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
  };
  if (opts.baseUrl) options.prefixUrl = opts.baseUrl;
  return got.extend(options);
}

/** Maps a got failure to a TorcaError carrying the server's code/message when it sent one. */
export function httpErrorToTorca(e: unknown, what: string): TorcaError {
  if (e instanceof TorcaError) return e;
  if (e instanceof HTTPError) {
    const status = e.response.statusCode;
    let body: unknown = e.response.body;
    if (typeof body === "string" || Buffer.isBuffer(body)) {
      try {
        body = JSON.parse(String(body));
      } catch {
        /* not JSON */
      }
    }
    const env = (body as { error?: { code?: string; message?: string; field?: string; line?: number; column?: number } } | undefined)?.error;
    const code = (env?.code ?? (status === 404 ? "not_found" : status === 401 ? "unauthorized" : status >= 500 ? "unavailable" : "invalid_input")) as ErrorCode;
    const exitCode = code === "invalid_input" || code === "payload_too_large" ? 2 : code === "unplaceable" ? 3 : 1;
    return new TorcaError(code, env?.message ?? `${what}: HTTP ${status}`, {
      status,
      exitCode,
      context: { field: env?.field, line: env?.line, column: env?.column, url: e.response.url },
    });
  }
  if (e instanceof RequestError) {
    return new UnavailableError(`${what}: ${e.code ?? ""} ${e.message}`.trim(), e);
  }
  return new UnavailableError(`${what}: ${e instanceof Error ? e.message : String(e)}`, e);
}
