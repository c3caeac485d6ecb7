import Router from "@koa/router";
import type { Context } from "koa";
import type { TokenTable } from "../../common/auth.js";
import { NotFoundError, NotPrimaryError, PayloadTooLargeError, UnavailableError, ValidationError } from "../../common/errors.js";
import type { BlobStore } from "../../storage/blob-store.js";
import { parseDigest } from "../../storage/digest.js";
import type { ManagerView } from "../http/api.js";
import { requireRole } from "../../http/auth.js";
import { validatePackageRef, type PackageRegistry } from "./registry.js";

/**
 * Package routes:
 *   PUT /v1/packages/:name/:version   (submit) body tar.gz → {name, version, digest, size, pushedAt, created}
 *   GET /v1/packages                  (read)   → {packages: [...]}
 *   GET /v1/blobs/:digest             (fetch)  the blob's bytes (read, submit, admin and agent tokens)
 *
 * The bytes go to the shared storage directory (any manager can store and
 * serve them); the name@version → digest record is a ZooKeeper write, so it
 * is the primary's, through its fenced session.
 */

export interface PackagesDeps {
  view: ManagerView;
  /** The registry over the current term's session; undefined while joining. */
  registry(): PackageRegistry | undefined;
  store: BlobStore;
  /** Largest accepted upload, in bytes (config manager.packageLimit). */
  packageLimit: number;
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

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

async function startsWith(store: BlobStore, digest: Parameters<BlobStore["openRead"]>[0], magic: Buffer): Promise<boolean> {
  let s;
  try {
    s = await store.openRead(digest);
  } catch (e) {
    // Gone already: a concurrent upload of the same bytes found them not to be gzip and deleted them (below).
    if (e instanceof NotFoundError) return false;
    throw e;
  }
  try {
    for await (const chunk of s) return (chunk as Buffer).subarray(0, magic.length).equals(magic);
    return false;
  } finally {
    s.destroy();
  }
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
    const blob = await d.store.putStream(ctx.req, { maxBytes: d.packageLimit });
    if (blob.size === 0 || !(await startsWith(d.store, blob.digest, GZIP_MAGIC))) {
      // Not even gzip: refuse now rather than let every agent fail to unpack it later.
      // Deleting is safe: any other upload of these exact bytes is refused the same way.
      await d.store.delete(blob.digest);
      throw new ValidationError([{ field: "body", message: "the body is not a gzip stream; send a tar.gz (torca push DIR packs one)" }]);
    }
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

  return r;
}
