import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { lstat, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { PackageCache, type PackageCacheOptions } from "../../agent/packages/cache.js";
import { BlobStore } from "../../src/storage/blob-store.js";
import { digestOfBuffer } from "../../src/storage/digest.js";
import { removeReadOnlyTree } from "../../src/storage/tree.js";
import { packageFixtures } from "../harness/package-fixtures.js";

const TOKEN = "test-token";
const { servers, freshDir, makePackage } = await packageFixtures("torca-cache");

interface BlobServer {
  url: string;
  requests: string[];
  blobs: Map<string, Buffer>;
  /** Responses to send corrupted (one flipped byte in the middle), counting down. */
  corruptNext: number;
}

/** A stand-in for the manager's `GET /v1/blobs/:digest`, with the bearer check. */
async function startBlobServer(): Promise<BlobServer> {
  const state: BlobServer = { url: "", requests: [], blobs: new Map(), corruptNext: 0 };
  const server = createServer((req, res) => {
    state.requests.push(req.url ?? "");
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "unauthorized", message: "bad token" } }));
      return;
    }
    const m = /^\/v1\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? "");
    const blob = m ? state.blobs.get(m[1] as string) : undefined;
    if (!blob) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "not_found", message: "no such blob" } }));
      return;
    }
    let body = blob;
    if (state.corruptNext > 0) {
      state.corruptNext -= 1;
      body = Buffer.from(blob);
      const mid = Math.floor(body.length / 2);
      body[mid] = (body[mid] as number) ^ 0xff;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length }).end(body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

async function newCache(overrides: Partial<PackageCacheOptions> & { urls?: string[] } = {}): Promise<PackageCache> {
  const { urls = [], ...rest } = overrides;
  return new PackageCache({
    cacheDir: await freshDir("cache"),
    maxBytes: 1024 ** 3,
    sources: { managerUrls: () => urls, token: TOKEN },
    retryDelayMs: 1,
    maxAttempts: 3,
    ...rest,
  });
}

describe("PackageCache", () => {
  test("20 concurrent ensure() of one digest: one download, one extraction, read-only result", async () => {
    const server = await startBlobServer();
    const pkg = await makePackage("a", 200_000);
    server.blobs.set(pkg.digest, pkg.blob);
    const cache = await newCache({ urls: [server.url] });
    const paths = await Promise.all(Array.from({ length: 20 }, () => cache.ensure(pkg.digest)));
    assert.equal(new Set(paths).size, 1);
    const path = paths[0] as string;
    assert.equal(server.requests.length, 1);
    const s = cache.stats();
    assert.equal(s.extractions, 1);
    assert.equal(s.misses, 1);
    assert.equal(s.coalesced, 19);
    assert.equal(s.bytesFromHttp, pkg.blob.length);
    assert.equal(await readFile(join(path, "bin", "start"), "utf8"), "#!/bin/sh\necho a\n");
    assert.equal((await lstat(join(path, "bin", "start"))).mode & 0o777, 0o555);
    assert.equal((await lstat(join(path, "data"))).mode & 0o777, 0o444);
    assert.deepEqual(await cache.list(), [pkg.digest]);

    // Second pull: a hit, nothing transferred.
    assert.equal(await cache.ensure(pkg.digest), path);
    assert.equal(server.requests.length, 1);
    assert.equal(cache.stats().bytesTransferred, pkg.blob.length);
    assert.equal(cache.stats().hits, 1);
    await cache.close();
  });

  test("a corrupted download is discarded, fetched again and verified", async () => {
    const server = await startBlobServer();
    const pkg = await makePackage("c", 300_000);
    server.blobs.set(pkg.digest, pkg.blob);
    server.corruptNext = 1;
    const cache = await newCache({ urls: [server.url] });
    const path = await cache.ensure(pkg.digest);
    assert.equal(server.requests.length, 2);
    assert.equal(cache.stats().integrityFailures, 1);
    assert.equal(cache.stats().bytesTransferred, 2 * pkg.blob.length);
    assert.deepEqual(await readFile(join(path, "data")), Buffer.alloc(300_000, "c".charCodeAt(0)));
    await cache.close();
  });

  test("content that never matches its digest fails with IntegrityError after bounded tries, leaving nothing", async () => {
    const server = await startBlobServer();
    const pkg = await makePackage("d");
    const other = await makePackage("e");
    // The server answers for pkg's digest with a valid but different package.
    server.blobs.set(pkg.digest, other.blob);
    const cache = await newCache({ urls: [server.url], maxAttempts: 3 });
    await assert.rejects(cache.ensure(pkg.digest), (e: unknown) => (e as { code?: string }).code === "integrity" && (e as Error).message.includes(other.digest));
    assert.equal(server.requests.length, 3);
    assert.equal(cache.stats().integrityFailures, 3);
    assert.deepEqual(await cache.list(), []);
    const cacheDir = join(cache.pathOf(pkg.digest), "..");
    assert.deepEqual(await readdir(cacheDir), []);
    await cache.close();
  });

  test("an unsafe package with a correct digest is refused at once, not retried", async () => {
    const server = await startBlobServer();
    // Minimal hostile tar: one entry named /etc/evil (ustar header by hand).
    const header = Buffer.alloc(512);
    header.write("/etc/evil", 0);
    header.write("0000644\0", 100);
    header.write("0000000\0", 108);
    header.write("0000000\0", 116);
    header.write("00000000000\0", 124);
    header.write("00000000000\0", 136);
    header.fill(0x20, 148, 156);
    header.write("0", 156);
    header.write("ustar\u000000", 257);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    const blob = gzipSync(Buffer.concat([header, Buffer.alloc(1024)]));
    const digest = digestOfBuffer(blob);
    server.blobs.set(digest, blob);
    const cache = await newCache({ urls: [server.url] });
    await assert.rejects(cache.ensure(digest), (e: unknown) => (e as { code?: string; context?: { entry?: string } }).code === "unsafe_archive" && (e as { context: { entry?: string } }).context.entry === "/etc/evil");
    assert.equal(server.requests.length, 1);
    await cache.close();
  });

  test("HTTP: bearer token is sent; a refused token is reported as such", async () => {
    const server = await startBlobServer();
    const pkg = await makePackage("t");
    server.blobs.set(pkg.digest, pkg.blob);
    const cache = await newCache({ urls: [server.url], sources: { managerUrls: () => [server.url], token: "wrong" } });
    await assert.rejects(cache.ensure(pkg.digest), (e: unknown) => (e as { code?: string }).code === "unauthorized");
    await cache.close();
    const good = await newCache({ urls: [server.url] });
    await good.ensure(pkg.digest);
    await good.close();
  });

  test("fails over across manager URLs; a blob nobody has is not_found", async () => {
    const dead = await startBlobServer();
    const deadUrl = dead.url;
    await new Promise<void>((resolve) => (servers.pop() as Server).close(() => resolve()));
    const live = await startBlobServer();
    const pkg = await makePackage("f");
    live.blobs.set(pkg.digest, pkg.blob);
    const cache = await newCache({ urls: [deadUrl, live.url] });
    await cache.ensure(pkg.digest);
    assert.equal(live.requests.length, 1);
    const missing = digestOfBuffer("nobody has this");
    await assert.rejects(cache.ensure(missing), (e: unknown) => (e as { code?: string }).code === "unavailable" || (e as { code?: string }).code === "not_found");
    const onlyLive = await newCache({ urls: [live.url] });
    await assert.rejects(onlyLive.ensure(missing), (e: unknown) => (e as { code?: string }).code === "not_found");
    await cache.close();
    await onlyLive.close();
  });

  test("reads straight from a locally mounted storage dir; a corrupted copy there falls back to HTTP", async () => {
    const storageDir = await freshDir("storage");
    const store = new BlobStore(storageDir);
    const pkg = await makePackage("s", 50_000);
    await store.putStream(Readable.from([pkg.blob]));
    const server = await startBlobServer();
    server.blobs.set(pkg.digest, pkg.blob);

    const local = await newCache({ sources: { storageDir, managerUrls: () => [server.url], token: TOKEN } });
    await local.ensure(pkg.digest);
    assert.equal(server.requests.length, 0);
    assert.equal(local.stats().bytesFromStorage, pkg.blob.length);
    assert.equal(local.stats().bytesFromHttp, 0);
    await local.close();

    // Bit rot in shared storage: detected by the digest, then HTTP serves good bytes.
    const rotten = Buffer.from(pkg.blob);
    rotten[rotten.length - 5] = (rotten[rotten.length - 5] as number) ^ 1;
    await removeReadOnlyTree(store.pathOf(pkg.digest));
    await writeFile(store.pathOf(pkg.digest), rotten);
    const fallback = await newCache({ sources: { storageDir, managerUrls: () => [server.url], token: TOKEN } });
    await fallback.ensure(pkg.digest);
    assert.equal(fallback.stats().integrityFailures, 1);
    assert.equal(server.requests.length, 1);
    await fallback.close();
  });

  test("gc evicts the least recently used package and never a pinned one", async () => {
    const server = await startBlobServer();
    const [a, b, c, d] = await Promise.all(["A", "B", "C", "D"].map((l) => makePackage(l, 100_000)));
    for (const p of [a, b, c, d]) if (p) server.blobs.set(p.digest, p.blob);
    if (!a || !b || !c || !d) throw new Error("packages");
    // Room for two packages (each ~100 KB of files) but not three.
    const cache = await newCache({ urls: [server.url], maxBytes: 250_000 });
    await cache.ensure(a.digest);
    await cache.ensure(b.digest);
    await cache.touch(a.digest); // b is now the least recently used
    await cache.ensure(c.digest);
    assert.deepEqual((await cache.list()).sort(), [a.digest, c.digest].sort());
    await assert.rejects(lstat(cache.pathOf(b.digest)));
    assert.equal(cache.stats().evictions, 1);

    // Pin a (the oldest now); d's arrival must evict c instead.
    const lease = await cache.acquire(a.digest);
    await cache.touch(c.digest);
    await cache.ensure(d.digest);
    assert.deepEqual((await cache.list()).sort(), [a.digest, d.digest].sort());
    assert.equal(await readFile(join(lease.path, "bin", "start"), "utf8"), "#!/bin/sh\necho A\n");

    // Over budget with everything pinned: nothing goes; after release, gc frees space.
    const leaseD = await cache.acquire(d.digest);
    const leaseB = await cache.acquire(b.digest);
    assert.ok(cache.totalBytes() > 250_000);
    assert.deepEqual(await cache.gc(), []);
    leaseB.release();
    lease.release();
    lease.release(); // idempotent
    // a was used before b: it goes first, and that is enough.
    assert.deepEqual(await cache.gc(), [a.digest]);
    assert.ok(cache.totalBytes() <= 250_000);
    leaseD.release();
    // No leftovers of evictions in the cache directory.
    assert.deepEqual((await readdir(join(cache.pathOf(d.digest), ".."))).filter((n) => n.startsWith(".")), []);
    await cache.close();
  });

  test("one agent per cache dir; a restarted agent finds its packages without transferring", async () => {
    const server = await startBlobServer();
    const pkg = await makePackage("r");
    server.blobs.set(pkg.digest, pkg.blob);
    const cacheDir = await freshDir("shared-cache");
    const opts: PackageCacheOptions = { cacheDir, maxBytes: 1024 ** 3, sources: { managerUrls: () => [server.url], token: TOKEN } };
    const first = new PackageCache(opts);
    await first.ensure(pkg.digest);
    const second = new PackageCache(opts);
    await assert.rejects(second.ensure(pkg.digest), (e: unknown) => (e as { code?: string }).code === "conflict" && /belongs to one agent/.test((e as Error).message));
    await first.close();

    const restarted = new PackageCache(opts);
    assert.deepEqual(await restarted.list(), [pkg.digest]);
    await restarted.ensure(pkg.digest);
    assert.equal(restarted.stats().bytesTransferred, 0);
    assert.equal(restarted.stats().hits, 1);
    assert.equal(server.requests.length, 1);
    await restarted.close();
  });

  test("rejects malformed digests at the border", async () => {
    const cache = await newCache();
    await assert.rejects(cache.ensure("sha256:abc"), (e: unknown) => (e as { code?: string }).code === "invalid_input");
    await assert.rejects(cache.ensure("../../etc"), (e: unknown) => (e as { code?: string }).code === "invalid_input");
    await cache.close();
  });
});
