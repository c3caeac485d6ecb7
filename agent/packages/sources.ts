import type { Readable } from "node:stream";
import type { Got } from "got";
import { NotFoundError, TorcaError, UnauthorizedError, UnavailableError } from "../../src/common/errors.js";
import { createHttpClient, httpErrorToTorca } from "../../src/common/http.js";
import { BlobStore } from "../../src/storage/blob-store.js";
import type { Digest } from "../../src/storage/digest.js";

/**
 * Where the agent can read a package blob from: another agent holding it
 * (a peer), the shared storage directory when it is mounted on this machine,
 * else a manager over HTTP. Peers and managers answer the same
 * `GET {url}/v1/blobs/{digest}`. A source only opens the bytes; verifying
 * them is the caller's business, since no source is trusted.
 */
export interface BlobSource {
  readonly kind: "storage" | "http" | "peer";
  /** For logs and error messages. */
  readonly name: string;
  /** The blob's bytes; NotFoundError when this source does not hold it. */
  open(digest: Digest): Promise<Readable>;
}

export function storageSource(dir: string): BlobSource & { has(digest: Digest): Promise<boolean> } {
  const store = new BlobStore(dir);
  return {
    kind: "storage",
    name: `storage ${dir}`,
    has: (digest) => store.has(digest),
    open: (digest) => store.openRead(digest),
  };
}

export interface HttpSourceOptions {
  token: string;
  /** The cell CA (a cell on TLS). */
  ca?: Buffer;
  /** Whole-download timeout; packages can be large, so this is generous. */
  downloadTimeoutMs: number;
  /** Time allowed to connect and to get response headers. */
  responseTimeoutMs: number;
}

/** A source answering 503 (a peer serving its limit of transfers at once): worth another try later, not a fault of the source. */
export class SourceBusyError extends UnavailableError {}

function httpStatusError(status: number, digest: Digest, url: string): TorcaError {
  if (status === 404) return new NotFoundError("blob", digest);
  if (status === 401 || status === 403) return new UnauthorizedError(`${url}: HTTP ${status} (token refused)`);
  if (status === 503) return new SourceBusyError(`${url}: HTTP 503 (busy)`);
  return new UnavailableError(`${url}: HTTP ${status}`);
}

/**
 * A manager (or, with `peer`, another agent) serving `/v1/blobs/:digest`.
 * Retries are the caller's (across sources), so the client makes none.
 */
export function httpSource(
  baseUrl: string,
  opts: HttpSourceOptions & { peer?: string },
  client: Got = createHttpClient({ token: opts.token, retries: 0, timeoutMs: opts.downloadTimeoutMs, ca: opts.ca }),
): BlobSource {
  const base = baseUrl.replace(/\/+$/, "");
  return {
    kind: opts.peer === undefined ? "http" : "peer",
    name: opts.peer === undefined ? `manager ${base}` : `peer ${opts.peer} ${base}`,
    async open(digest) {
      const url = `${base}/v1/blobs/${digest}`;
      const stream = client.stream(url, {
        throwHttpErrors: false,
        timeout: { request: opts.downloadTimeoutMs, connect: opts.responseTimeoutMs, response: opts.responseTimeoutMs },
      });
      try {
        const response = await new Promise<{ statusCode: number }>((resolve, reject) => {
          stream.once("response", resolve);
          stream.once("error", reject);
        });
        if (response.statusCode !== 200) throw httpStatusError(response.statusCode, digest, url);
      } catch (err) {
        stream.destroy();
        throw httpErrorToTorca(err, `GET ${url}`);
      }
      return stream;
    },
  };
}
