import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { got, HTTPError, RequestError, type Got, type OptionsInit } from "got";
import { withDefaults } from "./options.js";
import { errorFromWire, UnavailableError, type ErrorCode, type TorcaError, isTorcaError, type WireError } from "./errors.js";

/**
 * The one HTTP client wrapper (got): bearer token, timeouts, bounded retries on
 * idempotent methods, and Torca's error envelope `{error: {code, message, field}}`
 * turned back into the TorcaError subclass the server threw, so callers see one
 * error hierarchy on both sides of the wire.
 */
export interface HttpClientOptions {
  baseUrl?: string;
  token?: string;
  /** Whole-request timeout in ms. */
  timeoutMs?: number;
  /** Retries for idempotent requests and network errors. */
  retries?: number;
  /** Follow 307 redirects from a backup manager to the primary. */
  followRedirect?: boolean;
  /** The cell CA (PEM): https servers are verified against it alone. Without it only the system's CAs are trusted, which a cell CA is not. */
  ca?: Buffer | string;
  /**
   * The source address of every connection: a daemon's own address (see
   * sourceAddressOf), so the far end, and a firewall rule, see which host spoke.
   */
  localAddress?: string;
}

/**
 * The address a daemon listening on `host` sends from: that address when it
 * is a specific IP; none (the kernel's choice) for a wildcard or a name.
 */
export function sourceAddressOf(host: string): string | undefined {
  return isIP(host) && host !== "0.0.0.0" && host !== "::" ? host : undefined;
}

const DEFAULTS = Object.freeze({ timeoutMs: 10_000, retries: 2, followRedirect: true });

export function createHttpClient(opts: HttpClientOptions = {}): Got {
  const o = withDefaults(DEFAULTS, opts);
  const options: OptionsInit = {
    timeout: { request: o.timeoutMs },
    retry: {
      limit: o.retries,
      methods: ["GET", "PUT", "HEAD", "DELETE", "OPTIONS"],
      statusCodes: [502, 503, 504],
      errorCodes: ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EAI_AGAIN"],
      backoffLimit: 1000,
    },
    followRedirect: o.followRedirect,
    // 307 keeps method and body, which is what a write forwarded to the primary needs.
    methodRewriting: false,
    headers: o.token ? { authorization: `Bearer ${o.token}` } : {},
  };
  if (o.baseUrl) options.prefixUrl = o.baseUrl;
  if (o.ca !== undefined) options.https = { certificateAuthority: o.ca };
  if (o.localAddress) options.localAddress = o.localAddress;
  return got.extend(options);
}

/** The code a response without an envelope stands for (a proxy's or Koa's bare status). */
function codeForStatus(status: number): ErrorCode {
  return status === 404 ? "not_found" : status === 401 ? "unauthorized" : status >= 500 ? "unavailable" : "invalid_input";
}

/**
 * Maps a got failure to a TorcaError: a response with the envelope becomes the
 * server's own error class (see errorFromWire), with the request URL in its context.
 */
export function httpErrorToTorca(e: unknown, what: string): TorcaError {
  if (isTorcaError(e)) return e;
  if (e instanceof HTTPError) {
    const status = e.response.statusCode;
    const env = envelopeOf(e.response.body);
    const wire: WireError = { ...env, code: env?.code ?? codeForStatus(status), message: env?.message ?? `${what}: HTTP ${status}` };
    return errorFromWire(wire, status, { url: e.response.url });
  }
  if (e instanceof RequestError) {
    return new UnavailableError(`${what}: ${e.code ?? ""} ${e.message}`.trim(), e);
  }
  return new UnavailableError(`${what}: ${e instanceof Error ? e.message : String(e)}`, e);
}

/** The `{error: …}` of a response body (text, bytes or parsed), if it has one. */
function envelopeOf(body: unknown): Partial<WireError> | undefined {
  let parsed = body;
  if (typeof body === "string" || Buffer.isBuffer(body)) {
    try {
      parsed = JSON.parse(String(body));
    } catch {
      return undefined;
    }
  }
  const env = (parsed as { error?: unknown } | null | undefined)?.error;
  return env !== null && typeof env === "object" ? (env as Partial<WireError>) : undefined;
}

export interface UpgradeOptions {
  token?: string;
  ca?: Buffer | string;
  localAddress?: string;
  /** The `Upgrade:` protocol, e.g. torca-exec/1. */
  protocol: string;
  /** Until the server switched protocols (the stream itself has no timeout). */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

/**
 * An HTTP/1.1 upgrade (101 Switching Protocols) to a raw two-way stream, for
 * sessions that outlive any request timeout (torca exec). A refusal comes back
 * as the server's TorcaError, like any other request of this module.
 */
export function openUpgrade(url: string, o: UpgradeOptions): Promise<Duplex> {
  const target = new URL(url);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  const what = `upgrade to ${o.protocol} at ${target.pathname}`;
  return new Promise<Duplex>((resolve, reject) => {
    const req = send(target, {
      method: "POST",
      headers: { ...o.headers, connection: "Upgrade", upgrade: o.protocol, ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      timeout: o.timeoutMs ?? 10_000,
    });
    req.once("timeout", () => req.destroy(new UnavailableError(`${what}: no answer within ${o.timeoutMs ?? 10_000} ms`)));
    req.once("error", (e) => reject(isTorcaError(e) ? e : new UnavailableError(`${what}: ${e.message}`, e)));
    req.once("upgrade", (_res, socket: Socket, head: Buffer) => {
      req.setTimeout(0);
      socket.setTimeout(0);
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("end", () => {
        const status = res.statusCode ?? 500;
        const env = envelopeOf(Buffer.concat(chunks));
        reject(errorFromWire({ ...env, code: env?.code ?? codeForStatus(status), message: env?.message ?? `${what}: HTTP ${status}` }, status, { url }));
      });
    });
    req.end();
  });
}
