import { Transform, type TransformCallback } from "node:stream";

/**
 * A byte-rate token bucket, pure: time is passed in. The bucket holds at
 * most `burst` bytes and refills at `ratePerSecond`. `take(n)` always
 * succeeds and answers how long the caller must wait before sending those
 * bytes; the balance may go negative (a debt paid by later waits), so a
 * chunk larger than the burst is delayed rather than refused.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Milliseconds to wait before `bytes` may go out (0: at once). */
  take(bytes: number, now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.ratePerSecond) / 1000);
    this.at = Math.max(this.at, now);
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.ratePerSecond);
  }
}

/** Largest piece sent in one go, so transfers sharing a bucket interleave instead of queueing whole megabytes. */
const SLICE = 64 * 1024;

/** Passes bytes on no faster than `bucket` allows; every stream sharing one bucket shares its rate. */
export class ThrottleStream extends Transform {
  constructor(
    private readonly bucket: TokenBucket,
    /** Called with each piece's size as it goes out. */
    private readonly onPassed: (bytes: number) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    void this.pass(chunk).then(() => done(), done);
  }

  private async pass(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length && !this.destroyed; off += SLICE) {
      const slice = chunk.subarray(off, off + SLICE);
      const wait = this.bucket.take(slice.length, this.now());
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.onPassed(slice.length);
      this.push(slice);
    }
  }
}
