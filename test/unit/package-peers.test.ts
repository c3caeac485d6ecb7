import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import Koa from "koa";
import { BlobServer } from "../../agent/http/blobs.js";
import { PackageCache, type PackageCacheOptions } from "../../agent/packages/cache.js";
import type { PeerCorruption } from "../../agent/packages/peer-pull.js";
import { rankPeers, type PeerCandidate, type PeerDirectory } from "../../agent/packages/peers.js";
import { TokenBucket } from "../../agent/packages/token-bucket.js";
import { TokenTable } from "../../src/common/auth.js";
import { PULL_TTL_MS, PullTracker } from "../../src/manager/packages/pulls.js";
import { errorEnvelope } from "../../src/http/edge.js";
import { createLogger } from "../../src/common/logger.js";
import { digestOfBuffer } from "../../src/storage/digest.js";
import { packageFixtures } from "../harness/package-fixtures.js";

const TOKEN = "peer-test-token-0123456789";
const fx = await packageFixtures("torca-peers");
const { servers, freshDir } = fx;
const makePackage = (label: string, fileBytes = 50_000) => fx.makePackage(label, fileBytes);

function peer(id: string, load = 0, attributes: Record<string, string> = {}): PeerCandidate {
  return { id, url: `http://127.0.0.1/${id}`, attributes, load };
}

interface FakeServer {
  url: string;
  requests: number;
  /** Answer with this status instead of the blob (e.g. 503 busy). */
  status?: number;
  body?: Buffer;
}

/** A stand-in for a blob server (a manager or a peer) answering every digest with `body`. */
async function startFake(body?: Buffer, status?: number): Promise<FakeServer> {
  const state: FakeServer = { url: "", requests: 0, ...(body ? { body } : {}), ...(status ? { status } : {}) };
  const server = createServer((req, res) => {
    state.requests += 1;
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
    if (state.status) return void res.writeHead(state.status).end();
    if (!state.body) return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": state.body.length }).end(state.body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** An agent's real blob route over a cache, on its own port. */
async function serveCache(cache: PackageCache, opts: { rate?: number; burst?: number; maxTransfers?: number } = {}): Promise<{ url: string; server: BlobServer }> {
  const blobs = new BlobServer({ open: (d) => cache.openBlob(d), ratePerSecond: opts.rate ?? 1e9, burst: opts.burst ?? 1e9, maxTransfers: opts.maxTransfers ?? 4 });
  const app = new Koa();
  app.use(errorEnvelope(createLogger("test")));
  app.use(blobs.router(new TokenTable(undefined, [{ name: "agents", role: "agent", token: TOKEN }])).routes());
  const server = createServer(app.callback());
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server: blobs };
}

function directoryOf(list: () => PeerCandidate[], pulling: () => string[] = () => []): PeerDirectory & { asked: number } {
  const d = {
    asked: 0,
    lookup: () => {
      d.asked += 1;
      return Promise.resolve({ holders: list(), pulling: pulling() });
    },
  };
  return d;
}

async function newCache(o: { managers?: string[]; peers?: PeerDirectory; rack?: string; tries?: number; waitMs?: number; corrupt?: PeerCorruption[] } & Partial<PackageCacheOptions> = {}): Promise<PackageCache> {
  const { managers = [], peers, rack, tries = 3, waitMs = 300, corrupt, ...rest } = o;
  return new PackageCache({
    cacheDir: await freshDir("cache"),
    maxBytes: 1024 ** 3,
    sources: { managerUrls: () => managers, token: TOKEN, ...(peers ? { peers: { directory: peers, self: { id: "me", attributes: rack ? { rack } : {} }, tries, waitMs } } : {}) },
    keepBlobs: true,
    retryDelayMs: 1,
    maxAttempts: 2,
    ...(corrupt ? { onPeerCorrupt: (c: PeerCorruption) => corrupt.push(c) } : {}),
    ...rest,
  });
}

describe("choosing peers", () => {
  test("never itself nor a distrusted peer; at most the limit", () => {
    const holders = [peer("me"), peer("a"), peer("bad"), peer("b"), peer("c")];
    const chosen = rankPeers({ id: "me", attributes: {} }, holders, new Set(["bad"]), 2).map((p) => p.id);
    assert.equal(chosen.length, 2);
    assert.ok(!chosen.includes("me") && !chosen.includes("bad"));
    assert.deepEqual(rankPeers({ id: "me", attributes: {} }, holders, new Set(), 0), []);
  });

  test("nearest first (same rack, then same zone), then least loaded", () => {
    const self = { id: "me", attributes: { rack: "r1", zone: "z1" } };
    const holders = [
      peer("far-idle", 0, { rack: "r9", zone: "z9" }),
      peer("zone-busy", 3, { rack: "r2", zone: "z1" }),
      peer("zone-idle", 0.1, { rack: "r3", zone: "z1" }),
      peer("rack-busy", 2, { rack: "r1", zone: "z1" }),
    ];
    assert.deepEqual(
      rankPeers(self, holders, new Set(), 10).map((p) => p.id),
      ["rack-busy", "zone-idle", "zone-busy", "far-idle"],
    );
    // Without labels, load alone orders them.
    assert.deepEqual(
      rankPeers({ id: "me", attributes: {} }, [peer("x", 1.5), peer("y", 0), peer("z", 0.6)], new Set(), 10).map((p) => p.id),
      ["y", "z", "x"],
    );
  });

  test("equally good peers are spread: different askers start with different peers", () => {
    const holders = ["p1", "p2", "p3", "p4", "p5"].map((id) => peer(id));
    const firsts = new Set(Array.from({ length: 20 }, (_, i) => rankPeers({ id: `asker-${i}`, attributes: {} }, holders, new Set(), 1)[0]!.id));
    assert.ok(firsts.size >= 3, `first choices of 20 askers: ${[...firsts].join(", ")}`);
    // Stable for one asker.
    assert.deepEqual(rankPeers({ id: "asker-1", attributes: {} }, holders, new Set(), 5), rankPeers({ id: "asker-1", attributes: {} }, [...holders].reverse(), new Set(), 5));
  });
});

describe("who is pulling (the manager's view)", () => {
  test("each asker is told who asked before it and holds nothing yet; holders and old pulls drop out", () => {
    const t = new PullTracker();
    const d = "sha256:" + "a".repeat(64);
    assert.deepEqual(t.note(d, "a1", 1000), [], "the first asker waits for nobody: it reads storage");
    assert.deepEqual(t.note(d, "a2", 1001), ["a1"]);
    assert.deepEqual(t.note(d, "a3", 1001), ["a1", "a2"]);
    assert.deepEqual(t.note(d, "a1", 1500), [], "asking again keeps one's place");
    assert.deepEqual(t.note("sha256:" + "b".repeat(64), "a3", 1500), [], "per digest");
    t.done(d, "a1");
    assert.deepEqual(t.note(d, "a3", 1600), ["a2"]);
    assert.deepEqual(t.note(d, "a4", 1001 + PULL_TTL_MS + 1), [], "a pull not finished within the TTL is not waited for");
  });
});

describe("the byte-rate token bucket", () => {
  test("a full bucket lets the burst go at once, then paces at the rate", () => {
    const b = new TokenBucket(1000, 500, 0);
    assert.equal(b.take(500, 0), 0);
    assert.equal(b.take(100, 0), 100, "100 bytes over: 100 ms at 1000 B/s");
    assert.equal(b.take(100, 100), 100, "the debt was paid by t=100; these wait another 100 ms");
    // Idle for a long time: the bucket refills to the burst, not beyond.
    assert.equal(b.take(500, 10_000), 0);
    assert.equal(b.take(1, 10_000), 1);
  });
});

describe("pulling from peers", () => {
  test("a peer's verified blob is kept and served to the next agent; storage is not asked", async () => {
    const pkg = await makePackage("k");
    const manager = await startFake(pkg.blob);
    const first = await newCache({ managers: [manager.url] });
    await first.ensure(pkg.digest);
    assert.deepEqual(await first.blobs(), [pkg.digest]);
    assert.deepEqual(await readFile(first.blobPathOf(pkg.digest)), pkg.blob);
    const served = await serveCache(first);

    const second = await newCache({ managers: [manager.url], peers: directoryOf(() => [{ id: "first", url: served.url, attributes: {}, load: 0 }]) });
    const path = await second.ensure(pkg.digest);
    assert.equal(await readFile(join(path, "label"), "utf8"), "k");
    assert.equal(manager.requests, 1, "only the first agent went to the manager");
    assert.equal(second.stats().bytesFromPeers, pkg.blob.length);
    assert.equal(served.server.stats().bytesServed, pkg.blob.length);
    assert.equal(served.server.stats().active, 0);
    assert.deepEqual(await second.blobs(), [pkg.digest], "the second agent can serve it in turn");

    // Evicting the package takes its blob along: nothing is offered that is not cached.
    const small = await newCache({ managers: [manager.url], maxBytes: 1 });
    await small.ensure(pkg.digest);
    const other = await makePackage("o");
    manager.body = other.blob;
    await small.ensure(other.digest);
    assert.deepEqual(await small.blobs(), [other.digest]);
    assert.equal(await small.openBlob(pkg.digest), undefined);
    for (const c of [first, second, small]) await c.close();
  });

  test("a peer sending corrupted bytes is reported, skipped for the next peer, and not asked again", async () => {
    const pkg = await makePackage("v");
    const rotten = Buffer.from(pkg.blob);
    rotten[Math.floor(rotten.length / 2)] = (rotten[Math.floor(rotten.length / 2)] as number) ^ 0xff;
    const liar = await startFake(rotten);
    const honest = await startFake(pkg.blob);
    const manager = await startFake(pkg.blob);
    const corrupt: PeerCorruption[] = [];
    // The liar is the nearer peer, so it is asked first.
    const dir = directoryOf((): PeerCandidate[] => [
      { id: "liar", url: liar.url, attributes: { rack: "r1" }, load: 0 },
      { id: "honest", url: honest.url, attributes: {}, load: 0 },
    ]);
    const cache = await newCache({ managers: [manager.url], peers: dir, corrupt, rack: "r1" });
    await cache.ensure(pkg.digest);
    assert.equal(liar.requests, 1);
    assert.equal(honest.requests, 1);
    assert.equal(manager.requests, 0);
    const s = cache.stats();
    assert.equal(s.peerIntegrityFailures, 1);
    assert.equal(s.integrityFailures, 1);
    assert.equal(s.bytesFromPeers, 2 * pkg.blob.length);
    assert.equal(corrupt.length, 1);
    assert.equal(corrupt[0]!.peer, "liar");
    assert.equal(corrupt[0]!.digest, pkg.digest);
    assert.equal(corrupt[0]!.actual, digestOfBuffer(rotten));
    assert.deepEqual(await readFile(cache.blobPathOf(pkg.digest)), pkg.blob, "only verified bytes are kept");

    // Another package: the liar is not asked again.
    const next = await makePackage("w");
    honest.body = next.blob;
    await cache.ensure(next.digest);
    assert.equal(liar.requests, 1);
    assert.equal(honest.requests, 2);
    await cache.close();
  });

  test("falls back to storage and managers when peers fail, are busy or hold nothing", async () => {
    const pkg = await makePackage("f");
    const manager = await startFake(pkg.blob);
    const gone = await startFake(undefined); // 404: evicted since its ad
    const busy = await startFake(undefined, 503);
    const dir = directoryOf(() => [
      { id: "gone", url: gone.url, attributes: {}, load: 0 },
      { id: "busy", url: busy.url, attributes: {}, load: 0 },
    ]);
    const cache = await newCache({ managers: [manager.url], peers: dir });
    const t0 = Date.now();
    await cache.ensure(pkg.digest);
    const s = cache.stats();
    assert.equal(gone.requests, 1, "a peer that failed is not asked twice in one pull");
    assert.ok(busy.requests >= 2, `a busy peer is asked again while the wait lasts (${busy.requests})`);
    assert.ok(dir.asked >= 2, "the holders are read again between rounds");
    assert.ok(Date.now() - t0 < 5000, "the busy wait is bounded");
    assert.equal(s.peerFallbacks, 1);
    assert.equal(s.bytesFromHttp, pkg.blob.length);
    assert.equal(s.bytesFromPeers, 0);
    assert.equal(manager.requests, 1);

    // No peer at all: straight to the manager.
    const lonely = await newCache({ managers: [manager.url], peers: directoryOf(() => []) });
    await lonely.ensure(pkg.digest);
    assert.equal(lonely.stats().peerFallbacks, 1);
    assert.equal(manager.requests, 2);
    for (const c of [cache, lonely]) await c.close();
  });
});

describe("waiting for peers", () => {
  test("an agent that asked after another one waits for it to hold the blob, then pulls from it", async () => {
    const pkg = await makePackage("i");
    const manager = await startFake(pkg.blob);
    const first = await newCache({ managers: [manager.url] });
    const served = await serveCache(first);
    let firstHolds = false;
    const dir = directoryOf(
      () => (firstHolds ? [{ id: "first", url: served.url, attributes: {}, load: 0 }] : []),
      () => (firstHolds ? [] : ["first"]),
    );
    const waiter = await newCache({ managers: [manager.url], peers: dir, waitMs: 10_000 });
    const waiting = waiter.ensure(pkg.digest);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(manager.requests, 0, "the waiter did not read storage while the first agent was pulling");
    await first.ensure(pkg.digest);
    firstHolds = true;
    await waiting;
    assert.equal(manager.requests, 1, "storage served only the first agent");
    assert.equal(waiter.stats().bytesFromPeers, pkg.blob.length);
    assert.ok(dir.asked >= 2);
    for (const c of [first, waiter]) await c.close();
  });
});

describe("serving blobs to peers", () => {
  test("refuses a transfer beyond maxTransfers with 503, paces bytes at the configured rate, needs a token", async () => {
    const pkg = await makePackage("r", 2_000_000);
    const manager = await startFake(pkg.blob);
    const holder = await newCache({ managers: [manager.url] });
    await holder.ensure(pkg.digest);
    // The blob goes out in about 0.6 s at this rate.
    const rate = Math.ceil(pkg.blob.length / 0.6);
    const served = await serveCache(holder, { rate, burst: 1, maxTransfers: 1 });
    const url = `${served.url}/v1/blobs/${pkg.digest}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(`${served.url}/v1/blobs/${digestOfBuffer("absent")}`, { headers: auth })).status, 404);

    const t0 = Date.now();
    const slow = fetch(url, { headers: auth }).then(async (r) => ({ status: r.status, body: Buffer.from(await r.arrayBuffer()) }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await fetch(url, { headers: auth });
    assert.equal(second.status, 503);
    assert.equal(second.headers.get("retry-after"), "1");
    const first = await slow;
    const elapsed = Date.now() - t0;
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, pkg.blob);
    // blob bytes at `rate` B/s from an empty bucket: at least ~0.6 s.
    assert.ok(elapsed >= 500, `paced transfer took ${elapsed} ms`);
    const stats = served.server.stats();
    assert.equal(stats.refusedBusy, 1);
    assert.equal(stats.transfers, 1);
    assert.equal(stats.active, 0);
    await holder.close();
  });
});
