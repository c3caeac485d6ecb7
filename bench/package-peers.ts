import { createReadStream } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import Koa from "koa";
import { BlobServer } from "../agent/http/blobs.js";
import { PackageCache } from "../agent/packages/cache.js";
import type { PeerCandidate, PeerDirectory, PeerLookup } from "../agent/packages/peers.js";
import { ThrottleStream, TokenBucket } from "../agent/packages/token-bucket.js";
import { TokenTable } from "../src/common/auth.js";
import { PullTracker } from "../src/manager/packages/pulls.js";
import { BlobStore } from "../src/storage/blob-store.js";
import { isDigest, type Digest } from "../src/storage/digest.js";
import { packDirectoryToFile } from "../src/storage/pack.js";
import { removeReadOnlyTree } from "../src/storage/tree.js";
import { generatePackage, PACKAGE_BYTES } from "./package-pull.js";

/**
 * P8b: a 100 MB package pulled onto 10 agents at once, every agent from
 * shared storage against agents serving each other. The agents are the real
 * pull path (PackageCache: peers, verification, unpacking, kept blobs) and
 * the real blob route (BlobServer: token bucket, transfer cap), each with its
 * own cache directory and its own loopback address, in one process. Shared
 * storage stands behind one 1 Gbit/s link (a token bucket on the server), as
 * an NFS filer or the managers' blob route would; each agent serves at its
 * default agent.packagePeers rate (100 MiB/s, 4 transfers, 30 s wait). The
 * peer directory stands in for the manager's `/v1/blobs/:digest/peers`, with
 * the manager's own PullTracker: an agent is listed AD_DELAY_MS after its
 * cache holds the blob (report, ad write, ZooKeeper watch).
 */

const AGENTS = 10;
const TOKEN = "bench-peers-token";
const STORAGE_RATE = 125_000_000;
const PEER_RATE = 100 * 1024 * 1024;
const PEER_TRANSFERS = 4;
const PEER_TRIES = 3;
const PEER_WAIT_MS = 30_000;
const AD_DELAY_MS = 100;

interface SimAgent {
  id: string;
  cache: PackageCache;
  blobs?: BlobServer;
  server?: Server;
  url?: string;
}

/** Shared storage: the blob route of a manager in front of the storage directory, paced at STORAGE_RATE for all readers together. */
async function startStorage(store: BlobStore): Promise<{ url: string; bytes: () => number; close: () => void }> {
  const bucket = new TokenBucket(STORAGE_RATE, 1 << 20, Date.now());
  let served = 0;
  const server = createServer((req, res) => {
    const digest = /^\/v1\/blobs\/(.+)$/.exec(req.url ?? "")?.[1];
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
    if (!isDigest(digest)) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/gzip" });
    const pace = new ThrottleStream(bucket, (n) => {
      served += n;
    });
    pipeline(createReadStream(store.pathOf(digest), { highWaterMark: 1 << 20 }), pace, res).catch(() => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bytes: () => served, close: () => server.close() };
}

/** Who holds what, as the managers learn it from the agents' ads (after AD_DELAY_MS), and who asked first. */
class SimDirectory implements PeerDirectory {
  private readonly listed = new Map<string, PeerCandidate>();
  private readonly pulls = new PullTracker();

  lookup(digest: Digest, self: string): Promise<PeerLookup> {
    for (const id of this.listed.keys()) this.pulls.done(digest, id);
    return Promise.resolve({ holders: [...this.listed.values()], pulling: this.pulls.note(digest, self, Date.now()) });
  }

  advertise(agent: SimAgent): void {
    setTimeout(() => this.listed.set(agent.id, { id: agent.id, url: agent.url!, attributes: {}, load: 0 }), AD_DELAY_MS);
  }
}

async function startAgent(work: string, id: string, host: string, storageUrl: string, directory?: SimDirectory): Promise<SimAgent> {
  const agent: SimAgent = { id } as SimAgent;
  agent.cache = new PackageCache({
    cacheDir: join(work, id),
    maxBytes: 1024 ** 3,
    sources: { managerUrls: () => [storageUrl], token: TOKEN, ...(directory ? { peers: { directory, self: { id, attributes: {} }, tries: PEER_TRIES, waitMs: PEER_WAIT_MS } } : {}) },
    keepBlobs: directory !== undefined,
    ...(directory ? { onChange: () => directory.advertise(agent) } : {}),
  });
  await agent.cache.open();
  if (directory) {
    agent.blobs = new BlobServer({ open: (d) => agent.cache.openBlob(d), ratePerSecond: PEER_RATE, burst: 8 << 20, maxTransfers: PEER_TRANSFERS });
    const app = new Koa();
    app.use(agent.blobs.router(new TokenTable(undefined, [{ name: "agents", role: "agent", token: TOKEN }])).routes());
    agent.server = createServer(app.callback());
    await new Promise<void>((resolve) => agent.server!.listen(0, host, resolve));
    agent.url = `http://${host}:${(agent.server.address() as AddressInfo).port}`;
  }
  return agent;
}

async function stopAgent(work: string, a: SimAgent): Promise<void> {
  await a.cache.close();
  if (a.server) await new Promise<void>((resolve) => a.server!.close(() => resolve()));
  await removeReadOnlyTree(join(work, a.id));
}

interface RoundResult {
  ms: number;
  storageBytes: number;
  peerBytes: number;
  peerFallbacks: number;
}

/** 10 fresh agents pull at once; `seeded`: one more agent pulled the package before (not counted). */
async function round(work: string, storage: Awaited<ReturnType<typeof startStorage>>, digest: Digest, mode: "storage" | "peers", seeded: boolean): Promise<RoundResult> {
  const directory = mode === "peers" ? new SimDirectory() : undefined;
  const agents: SimAgent[] = [];
  try {
    if (seeded) {
      const seed = await startAgent(work, `${mode}-seed`, "127.0.0.30", storage.url, directory);
      agents.push(seed);
      await seed.cache.ensure(digest);
      await new Promise((resolve) => setTimeout(resolve, 2 * AD_DELAY_MS));
    }
    const fresh = await Promise.all(Array.from({ length: AGENTS }, (_, i) => startAgent(work, `${mode}-${seeded ? "s" : "c"}-${i + 1}`, `127.0.0.${31 + i}`, storage.url, directory)));
    agents.push(...fresh);
    const before = storage.bytes();
    const t0 = performance.now();
    await Promise.all(fresh.map((a) => a.cache.ensure(digest)));
    const ms = performance.now() - t0;
    const stats = fresh.map((a) => a.cache.stats());
    return {
      ms,
      storageBytes: storage.bytes() - before,
      peerBytes: stats.reduce((n, s) => n + s.bytesFromPeers, 0),
      peerFallbacks: stats.reduce((n, s) => n + s.peerFallbacks, 0),
    };
  } finally {
    for (const a of agents) await stopAgent(work, a);
  }
}

export async function benchPackagePeers(): Promise<Record<string, number | string>> {
  const work = await mkdtemp(join(tmpdir(), "torca-bench-peers-"));
  const store = new BlobStore(join(work, "storage"));
  let storage: Awaited<ReturnType<typeof startStorage>> | undefined;
  try {
    await generatePackage(join(work, "src"));
    const tgz = join(work, "package.tar.gz");
    const { digest, size } = await packDirectoryToFile(join(work, "src"), tgz);
    await store.putStream(createReadStream(tgz));
    storage = await startStorage(store);
    const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
    const out: Record<string, number | string> = { agents: AGENTS, package_bytes: PACKAGE_BYTES, blob_bytes: size, storage_link_bytes_per_s: STORAGE_RATE, peer_rate_bytes_per_s: PEER_RATE, peer_max_transfers: PEER_TRANSFERS };
    const scenarios: [string, "storage" | "peers", boolean][] = [
      ["all_from_storage", "storage", false],
      ["peers_one_seed", "peers", true],
      ["peers_cold_start", "peers", false],
    ];
    for (const [name, mode, seeded] of scenarios) {
      const r = await round(work, storage, digest, mode, seeded);
      out[`${name}_total_ms`] = Math.round(r.ms);
      out[`${name}_storage_mb`] = mb(r.storageBytes);
      out[`${name}_peer_mb`] = mb(r.peerBytes);
      if (mode === "peers") out[`${name}_agents_falling_back_to_storage`] = r.peerFallbacks;
    }
    return out;
  } finally {
    storage?.close();
    await removeReadOnlyTree(work);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchPackagePeers();
  for (const [name, value] of Object.entries(result)) console.log(`${name}: ${value}`);
}
