import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Transform, type TransformCallback } from "node:stream";
import { InternalError, PayloadTooLargeError, ValidationError } from "../common/errors.js";

/**
 * Content digests, OCI style: `sha256:<64 lowercase hex>`. One algorithm on
 * purpose: a digest names a blob in the store, so two spellings of the same
 * content (upper/lower hex, other algorithms) would be two names for one thing.
 */
export type Digest = `sha256:${string}`;

const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === "string" && DIGEST_PATTERN.test(value);
}

/** Validates a digest coming from outside (API path, task description, CLI). */
export function parseDigest(value: unknown, field = "digest"): Digest {
  if (isDigest(value)) return value;
  const shown = typeof value === "string" ? JSON.stringify(value.length > 80 ? value.slice(0, 80) + "…" : value) : typeof value;
  throw new ValidationError([{ field, message: `${shown} is not a digest (expected sha256:<64 lowercase hex digits>)` }]);
}

/** The hex part of a digest, used as a file name. */
export function digestHex(digest: Digest): string {
  return digest.slice("sha256:".length);
}

function digestFromHash(hash: Hash): Digest {
  return `sha256:${hash.digest("hex")}`;
}

export function digestOfBuffer(data: Uint8Array | string): Digest {
  return digestFromHash(createHash("sha256").update(data));
}

export async function digestOfFile(path: string): Promise<{ digest: Digest; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    size += buf.length;
  }
  return { digest: digestFromHash(hash), size };
}

export interface DigestingStreamOptions {
  /** Fail with PayloadTooLargeError as soon as more than this many bytes pass. */
  maxBytes?: number;
}

/**
 * A pass-through that hashes and counts what flows through it, so content can
 * be verified while it is being stored or unpacked instead of in a second pass.
 * `digest()` is available once the stream has ended.
 */
export class DigestingStream extends Transform {
  private readonly hash = createHash("sha256");
  private readonly maxBytes: number;
  private result: Digest | undefined;
  bytes = 0;

  constructor(opts: DigestingStreamOptions = {}) {
    super();
    this.maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(new PayloadTooLargeError(this.maxBytes));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.result = digestFromHash(this.hash);
    callback();
  }

  /** The digest of everything that passed; throws if the stream has not ended yet. */
  digest(): Digest {
    if (this.result === undefined) throw new InternalError("DigestingStream.digest() called before the stream ended");
    return this.result;
  }

  get finished(): boolean {
    return this.result !== undefined;
  }
}
