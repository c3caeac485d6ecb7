import Router from "@koa/router";
import type { Context } from "koa";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import type { TokenTable } from "../../common/auth.js";
import { NotFoundError, NotPrimaryError, PayloadTooLargeError, UnavailableError, ValidationError } from "../../common/errors.js";
import type { Config } from "../../common/config.js";
import type { BlobStore } from "../../storage/blob-store.js";
import { parseDigest } from "../../storage/digest.js";
import { checkArchive, type ExtractLimits } from "../../storage/unpack.js";
import type { ManagerView } from "../http/api.js";
import { requireRole } from "../../http/auth.js";
import { queryValue } from "../../http/query.js";
import { PullTracker } from "./pulls.js";
import { validatePackageRef, type PackageRegistry } from "./registry.js";

/**
 * Package routes:
 *   PUT /v1/packages/:name/:version   (submit) body tar.gz → {name, version, digest, size, pushedAt, created}
 *   GET /v1/packages                  (read)   → {packages: [...]}
 *   GET /v1/blobs/:digest             (fetch)  the blob's bytes (read, submit, admin and agent tokens)
 *   GET /v1/blobs/:digest/peers       (fetch)  {digest, peers: [{id, url, attributes, load}], pulling}: the
 *       [?agent=ID]                            agents whose ads say they serve the blob (any manager);
 *                                              with `agent`, that agent is about to pull it, and `pulling`
 *                                              names those that asked before it and hold nothing yet (pulls.ts)
 *
 * The bytes go to the shared storage directory (any manager can store and
 * serve them); the name@version → digest record is a ZooKeeper write, so it
 * is the primary's, through its fenced session.
 *
 * A push is checked while it streams in, with the agents' safe-extraction
 * rules (src/storage/unpack.ts) and the limits of manager.packageLimits: a
 * bad archive is refused with 422 naming its first bad entry, and its bytes
 * never leave the temporary file (BlobStore.putStream's check).
 */

export interface PackagesDeps {
  view: ManagerView;
  /** The registry over the current term's session; undefined while joining. */
  registry(): PackageRegistry | undefined;
  store: BlobStore;
  /** Largest accepted upload, in bytes (config manager.packageLimit). */
  packageLimit: number;
  /** What a pushed archive may unpack to (config manager.packageLimits). */
  packageLimits: Config["manager"]["packageLimits"];
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

function notGzip(): ValidationError {
  return new ValidationError([{ field: "body", message: "the body is not a gzip stream; send a tar.gz (torca push DIR packs one)" }]);
}

/** Passes the bytes on once they start like gzip; anything else (an empty body too) is a ValidationError. */
class GzipSniffer extends Transform {
  private head = Buffer.alloc(0);
  private passing = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.passing) return done(null, chunk);
    this.head = Buffer.concat([this.head, chunk]);
    if (this.head.length < GZIP_MAGIC.length) return done();
    if (!this.head.subarray(0, GZIP_MAGIC.length).equals(GZIP_MAGIC)) return done(notGzip());
    this.passing = true;
    done(null, this.head);
  }

  override _flush(done: TransformCallback): void {
    done(this.passing ? null : notGzip());
  }
}

function extractLimitsOf(l: PackagesDeps["packageLimits"]): Partial<ExtractLimits> {
  return { maxBytes: l.unpackedSize, maxEntries: l.entries, maxRatio: l.ratio, ratioFreeBytes: l.ratioAfter };
}

/** The push's bytes against the safe-extraction rules; rejects with the first problem. */
async function checkPush(bytes: Readable, limits: Partial<ExtractLimits>): Promise<void> {
  const sniffer = new GzipSniffer();
  // The sniffer's own error (not gzip) reaches checkArchive as its input's error.
  bytes.on("error", (e) => sniffer.destroy(e));
  try {
    await checkArchive(bytes.pipe(sniffer), limits);
  } finally {
    // Whatever follows (bytes after a refusal, or after the gzip end) must not back up the upload.
    bytes.unpipe(sniffer);
    sniffer.destroy();
  }
}

/** Same rule as api.ts: a backup answers writes with 307 to the primary, or 503 while none is elected. */
function requirePrimary(v: ManagerView): void {
  if (v.primary()?.isActive) return;
  const l = v.leader();
  throw new NotPrimaryError(l && l.id !== v.id ? l.url : undefined);
}

function requireRegistry(d: PackagesDeps): PackageRegistry {
  const r = d.registry();
  if (!r) throw new UnavailableError("this manager is still joining the cluster");
  return r;
}

export function packagesRouter(d: PackagesDeps, tokens: TokenTable): Router {
  const r = new Router();
  const read = requireRole(tokens, "read");
  const submit = requireRole(tokens, "submit");

  r.put("/v1/packages/:name/:version", submit, async (ctx: Context) => {
    const name = ctx.params.name!;
    const version = ctx.params.version!;
    validatePackageRef(name, version);
    // Before reading the body: a backup should not swallow a large upload only to redirect it.
    requirePrimary(d.view);
    const registry = requireRegistry(d);
    const declared = Number(ctx.get("content-length") || NaN);
    if (Number.isFinite(declared) && declared > d.packageLimit) throw new PayloadTooLargeError(d.packageLimit);
    const limits = extractLimitsOf(d.packageLimits);
    const blob = await d.store.putStream(ctx.req, { maxBytes: d.packageLimit, check: (bytes) => checkPush(bytes, limits) });
    // Checked again after the upload: primacy may have moved while the bytes streamed.
    requirePrimary(d.view);
    const { created, record } = await registry.record(name, version, { digest: blob.digest, size: blob.size, pushedAt: Date.now() });
    ctx.status = created ? 201 : 200;
    ctx.body = { name, version, ...record, created };
  });

  r.get("/v1/packages", read, async (ctx) => {
    ctx.body = { packages: await requireRegistry(d).list() };
  });

  r.get("/v1/blobs/:digest", requireRole(tokens, "fetch"), async (ctx) => {
    const digest = parseDigest(ctx.params.digest, "digest");
    const st = await d.store.stat(digest);
    if (!st) throw new NotFoundError("blob", digest);
    const stream = await d.store.openRead(digest);
    ctx.set("ETag", `"${digest}"`);
    // Content-addressed: the bytes behind a digest never change.
    ctx.set("Cache-Control", "public, max-age=31536000, immutable");
    ctx.type = "application/gzip";
    ctx.body = stream;
    // After the body: assigning a stream body drops any Content-Length set before.
    ctx.length = st.size;
  });

  const pulls = new PullTracker();
  r.get("/v1/blobs/:digest/peers", requireRole(tokens, "fetch"), (ctx) => {
    const digest = parseDigest(ctx.params.digest, "digest");
    const agent = queryValue(ctx, "agent", { pattern: /^[A-Za-z0-9._-]{1,64}$/, what: "an agent id" });
    const nodes = d.view.collector()?.nodes() ?? [];
    const holders = nodes.filter((n) => n.blobs?.includes(digest));
    for (const n of holders) pulls.done(digest, n.id);
    const peers = holders
      .filter((n) => n.state === "ready" || n.state === "draining")
      .map((n) => ({ id: n.id, url: n.url, attributes: n.attributes, load: n.load && n.allocatable.cpu > 0 ? n.load.cpu1m / n.allocatable.cpu : 0 }));
    ctx.body = { digest, peers, pulling: agent === undefined ? [] : pulls.note(digest, agent, Date.now()) };
  });

  return r;
}
