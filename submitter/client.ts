import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { type Got, type OptionsOfTextResponseBody } from "got";
import { isTorcaError, TorcaError, UnavailableError } from "../src/common/errors.js";
import type { Duplex } from "node:stream";
import { createHttpClient, httpErrorToTorca, openUpgrade } from "../src/common/http.js";
import { EXEC_PROTOCOL } from "../src/exec/frames.js";
import type { ClientSettings } from "./settings.js";

/**
 * The CLI's API client. Writes go to the primary: backups answer them with 307,
 * and since an HTTP client must not carry the bearer token across origins on a
 * redirect, the client follows the Location itself (the primary is a manager of
 * the same cell). When a manager is unreachable (e.g. mid-failover) the request
 * is retried once on the next known manager.
 */
/** How long a POST with an Idempotency-Key keeps being retried across a failover (a takeover takes a few session timeouts). */
const IDEMPOTENT_RETRY_MS = 30_000;

export class TorcaClient {
  private readonly http: Got;

  constructor(private readonly s: ClientSettings) {
    this.http = createHttpClient({ token: s.token, timeoutMs: 30_000, retries: 1, followRedirect: false, ca: s.ca });
  }

  private async send<T>(method: "GET" | "POST" | "PUT" | "DELETE", path: string, opts: OptionsOfTextResponseBody = {}, bases = this.s.managers): Promise<T> {
    const what = `${method} ${path}`;
    let last: TorcaError | undefined;
    const order = bases.length === 1 ? [bases[0]!, bases[0]!] : bases;
    for (const base of order) {
      try {
        let res = await this.http(`${base}${path}`, { ...opts, method });
        if (res.statusCode === 307 && res.headers.location) {
          res = await this.http(new URL(res.headers.location, base).href, { ...opts, method });
        }
        if (res.statusCode === 307) throw new UnavailableError(`${what}: redirected twice; is a primary elected?`);
        return JSON.parse(res.body) as T;
      } catch (e) {
        last = httpErrorToTorca(e, what);
        if (last.code !== "unavailable" && last.code !== "not_primary" && last.status !== 503) throw last;
      }
    }
    throw last ?? new UnavailableError(`${what}: no manager reachable`);
  }

  get<T>(path: string): Promise<T> {
    return this.send<T>("GET", path);
  }

  delete<T>(path: string): Promise<T> {
    return this.send<T>("DELETE", path);
  }

  post<T>(path: string, body: string | object, contentType = "application/json"): Promise<T> {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return this.send<T>("POST", path, { body: text, headers: { "content-type": contentType }, retry: { limit: 0 } });
  }

  /**
   * A POST carrying an Idempotency-Key (one per call): retried with the same
   * key on connection errors and 503 (a dying or not yet elected primary),
   * for at most IDEMPOTENT_RETRY_MS. The server answers a repeated key with
   * its first answer, so a request whose answer was lost is neither lost nor
   * done twice.
   */
  async postIdempotent<T>(path: string, body: string, contentType: string, key = randomUUID()): Promise<T> {
    const deadline = Date.now() + IDEMPOTENT_RETRY_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send<T>("POST", path, { body, headers: { "content-type": contentType, "idempotency-key": key }, retry: { limit: 0 } });
      } catch (e) {
        const retriable = isTorcaError(e) && (e.code === "unavailable" || e.code === "not_primary" || e.status === 503);
        if (!retriable || Date.now() >= deadline) throw e;
        await sleep(Math.min(2000, 200 * 2 ** attempt));
      }
    }
  }

  /** The primary's base URL (a streamed body cannot be replayed after a redirect). */
  async primary(): Promise<string> {
    const l = await this.get<{ url: string }>("/v1/leader");
    return l.url.replace(/\/$/, "");
  }

  async put<T>(path: string, body: () => NodeJS.ReadableStream, contentType: string, onProgress?: (sent: number, total?: number) => void): Promise<T> {
    const base = await this.primary();
    try {
      const req = this.http.put(`${base}${path}`, { body: body() as unknown as Buffer, headers: { "content-type": contentType }, retry: { limit: 0 }, timeout: { request: 30 * 60_000 } });
      if (onProgress) req.on("uploadProgress", (p: { transferred: number; total?: number }) => onProgress(p.transferred, p.total));
      return await req.json<T>();
    } catch (e) {
      throw httpErrorToTorca(e, `PUT ${path}`);
    }
  }

  /** An HTTP upgrade on the primary (torca exec): a raw two-way stream once the server switched protocols. */
  async upgrade(path: string, headers: Record<string, string>, protocol = EXEC_PROTOCOL): Promise<Duplex> {
    const base = await this.primary();
    return openUpgrade(`${base}${path}`, { protocol, headers, ...(this.s.token ? { token: this.s.token } : {}), ...(this.s.ca !== undefined ? { ca: this.s.ca } : {}) });
  }

  stream(path: string): NodeJS.ReadableStream {
    return this.http.stream(`${this.s.managers[0]}${path}`, { timeout: {}, retry: { limit: 0 } });
  }
}
