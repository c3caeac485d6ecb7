import Router from "@koa/router";
import type { Context } from "koa";
import type { ReadStream } from "node:fs";
import type { TokenTable } from "../../src/common/auth.js";
import { NotFoundError, UnavailableError } from "../../src/common/errors.js";
import { parseDigest, type Digest } from "../../src/storage/digest.js";
import { requireRole } from "../../src/http/auth.js";
import { ThrottleStream, TokenBucket } from "../packages/token-bucket.js";

/**
 * `GET /v1/blobs/:digest` on the agent: the verified blob of a package this
 * agent caches, for other agents (docs/packages.md). Read-only, for tokens
 * holding the fetch grant (the agents' own credential among them), at most
 * `maxTransfers` at once (one more is answered 503 with Retry-After, and the
 * asking agent tries another source), all transfers together paced by one
 * byte-rate token bucket.
 */

export interface BlobServingOptions {
  /** The blob's bytes and size, or undefined when this agent does not hold it. */
  open(digest: Digest): Promise<{ stream: ReadStream; size: number } | undefined>;
  ratePerSecond: number;
  burst: number;
  maxTransfers: number;
}

export interface BlobServingStats {
  /** Transfers answered 200 (completed or not). */
  transfers: number;
  /** Bytes that went out to peers. */
  bytesServed: number;
  /** Requests refused because maxTransfers were under way. */
  refusedBusy: number;
  /** Transfers under way now. */
  active: number;
}

export class BlobServer {
  private readonly bucket: TokenBucket;
  private readonly counters: BlobServingStats = { transfers: 0, bytesServed: 0, refusedBusy: 0, active: 0 };

  constructor(private readonly o: BlobServingOptions) {
    this.bucket = new TokenBucket(o.ratePerSecond, o.burst, Date.now());
  }

  stats(): BlobServingStats {
    return { ...this.counters };
  }

  router(tokens: TokenTable): Router {
    const r = new Router();
    r.get("/v1/blobs/:digest", requireRole(tokens, "fetch"), (ctx) => this.serve(ctx));
    return r;
  }

  private async serve(ctx: Context): Promise<void> {
    const digest = parseDigest(ctx.params.digest, "digest");
    if (this.counters.active >= this.o.maxTransfers) {
      this.counters.refusedBusy += 1;
      // Answered here rather than thrown: a busy peer is routine, not a failure for the error log.
      ctx.status = 503;
      ctx.set("Retry-After", "1");
      ctx.body = { error: new UnavailableError(`busy: ${this.o.maxTransfers} blob transfers under way`).toJSON() };
      return;
    }
    const blob = await this.o.open(digest);
    if (!blob) throw new NotFoundError("blob", digest);
    this.counters.active += 1;
    this.counters.transfers += 1;
    const throttle = new ThrottleStream(this.bucket, (n) => {
      this.counters.bytesServed += n;
    });
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      this.counters.active -= 1;
      blob.stream.destroy();
    };
    throttle.once("close", end);
    blob.stream.once("error", (e) => throttle.destroy(e));
    ctx.res.once("close", () => {
      throttle.destroy();
      end();
    });
    ctx.set("ETag", `"${digest}"`);
    ctx.type = "application/gzip";
    ctx.body = blob.stream.pipe(throttle);
    ctx.length = blob.size;
  }
}
