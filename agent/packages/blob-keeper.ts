import { randomBytes } from "node:crypto";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { digestHex, type Digest } from "../../src/storage/digest.js";

/**
 * Writes what passes through to a temporary file next to the kept blobs
 * (each chunk is on its way to disk before it is passed on, so the file
 * keeps pace with the hasher); commit() puts it under its digest once the
 * caller verified that digest, discard() removes whatever was not committed.
 */
export class BlobKeeper extends Transform {
  private committed = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly tmp: string,
  ) {
    super();
  }

  static async create(dir: string, digest: Digest): Promise<BlobKeeper> {
    const tmp = join(dir, `.${digestHex(digest)}.${randomBytes(6).toString("hex")}.part`);
    return new BlobKeeper(await open(tmp, "wx", 0o600), tmp);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.fh.write(chunk).then(() => done(null, chunk), done);
  }

  /** Durable before it is offered: a peer must not receive a blob cut short by a crash. */
  async commit(path: string): Promise<void> {
    await this.fh.sync();
    await this.fh.close();
    await rename(this.tmp, path);
    this.committed = true;
  }

  async discard(): Promise<void> {
    if (this.committed) return;
    await this.fh.close().catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}
