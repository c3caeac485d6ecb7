import { createWriteStream, type ReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat as fsStat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { PassThrough, Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { IntegrityError, NotFoundError } from "../common/errors.js";
import { DigestingStream, digestHex, digestOfFile, type Digest } from "./digest.js";

/**
 * Content-addressed blob store in a directory: `<dir>/blobs/sha256/<hex>`.
 * The directory may be a shared mount (NFS) used by several managers at once,
 * so a blob is only ever created by writing a temporary file in the same
 * directory, fsyncing it and renaming it to its final name: readers on any
 * host see either no blob or the complete one, and two writers of the same
 * content both end with the same file (content addressing makes the race
 * harmless). Blobs are never modified in place.
 */

export interface PutOptions {
  /** Refuse (PayloadTooLargeError) as soon as more bytes than this arrive. */
  maxBytes?: number;
  /** When the caller knows the digest, a mismatch is an IntegrityError and nothing is stored. */
  expectedDigest?: Digest;
  /**
   * Reads a copy of the bytes while they stream in; if it throws, nothing is
   * stored and putStream throws its error, once the source has been read to
   * its end (so an HTTP client still sending gets the answer).
   */
  check?: (bytes: Readable) => Promise<unknown>;
}

export interface BlobInfo {
  digest: Digest;
  size: number;
}

const TMP_PREFIX = ".tmp-";

export class BlobStore {
  readonly root: string;
  private readonly blobDir: string;

  constructor(dir: string) {
    this.root = dir;
    this.blobDir = join(dir, "blobs", "sha256");
  }

  pathOf(digest: Digest): string {
    return join(this.blobDir, digestHex(digest));
  }

  /** Streams `source` into the store while hashing it; idempotent for content already present. */
  async putStream(source: Readable, opts: PutOptions = {}): Promise<BlobInfo> {
    await mkdir(this.blobDir, { recursive: true });
    const tmp = join(this.blobDir, `${TMP_PREFIX}${randomBytes(8).toString("hex")}`);
    const hasher = new DigestingStream({ maxBytes: opts.maxBytes });
    const stages: Transform[] = [hasher];
    let checked: Promise<unknown> = Promise.resolve();
    if (opts.check) {
      const tap = new CheckTap();
      stages.push(tap);
      // However the check ends, the copy stops holding the upload back.
      checked = opts.check(tap.copy).finally(() => tap.abandon());
      checked.catch(() => undefined);
    }
    try {
      await pipeline([source, ...stages, createWriteStream(tmp, { flags: "wx", mode: 0o444 })]);
      await checked;
      const digest = hasher.digest();
      if (opts.expectedDigest !== undefined && digest !== opts.expectedDigest) {
        throw new IntegrityError(`content has digest ${digest}, expected ${opts.expectedDigest}`, { expected: opts.expectedDigest, actual: digest });
      }
      await fsyncPath(tmp);
      // rename() replaces an existing blob atomically; same name means same bytes.
      await rename(tmp, this.pathOf(digest));
      await fsyncDirectory(this.blobDir);
      return { digest, size: hasher.bytes };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  async stat(digest: Digest): Promise<{ size: number; mtime: Date } | undefined> {
    try {
      const st = await fsStat(this.pathOf(digest));
      return st.isFile() ? { size: st.size, mtime: st.mtime } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  /** Opens the blob for reading; NotFoundError if absent (checked before returning). */
  async openRead(digest: Digest): Promise<ReadStream> {
    let fh;
    try {
      fh = await open(this.pathOf(digest), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError("blob", digest);
      throw err;
    }
    return fh.createReadStream({ highWaterMark: 1 << 20 });
  }

  /** Re-hashes the stored bytes: false if they no longer match their name (bit rot, a bad copy). */
  async verify(digest: Digest): Promise<boolean> {
    if (!(await this.has(digest))) throw new NotFoundError("blob", digest);
    return (await digestOfFile(this.pathOf(digest))).digest === digest;
  }

  /** Removes a blob (e.g. one found corrupted); absent blobs are not an error. */
  async delete(digest: Digest): Promise<void> {
    await rm(this.pathOf(digest), { force: true });
  }
}

/**
 * Passes the bytes on unchanged and offers a copy to a reader (`copy`), with
 * backpressure from both; once the reader is done (`abandon`), the copy is
 * no longer fed. A failed upload fails the copy too, so its reader ends.
 */
class CheckTap extends Transform {
  readonly copy = new PassThrough({ highWaterMark: 1 << 20 });
  private abandoned = false;

  abandon(): void {
    this.abandoned = true;
    this.copy.resume();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // After _flush the copy holds the whole upload: its reader finishes it.
    if (err || !this.copy.writableEnded) this.copy.destroy(err ?? new Error("the upload was aborted"));
    done(err);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    if (this.abandoned || this.copy.write(chunk)) return done(null, chunk);
    this.copy.once("drain", () => done(null, chunk));
  }

  override _flush(done: () => void): void {
    this.copy.end();
    done();
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes the rename durable; some file systems (certain NFS setups) refuse fsync on a directory, which is then best effort. */
async function fsyncDirectory(path: string): Promise<void> {
  try {
    await fsyncPath(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM" && code !== "EBADF") throw err;
  }
}
