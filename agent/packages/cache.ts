import { randomBytes } from "node:crypto";
import type { ReadStream } from "node:fs";
import { chmod, lstat, mkdir, open, readdir, rename, rm, utimes, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { IntegrityError, NotFoundError, TorcaError, UnavailableError, UnsafeArchiveError, toTorcaError } from "../../src/common/errors.js";
import { createLogger, type Logger } from "../../src/common/logger.js";
import { DigestingStream, digestHex, parseDigest, type Digest } from "../../src/storage/digest.js";
import { removeReadOnlyTree, treeFileBytes } from "../../src/storage/tree.js";
import { extractSafely, type ExtractLimits } from "../../src/storage/unpack.js";
import { acquireDirectoryLock, type DirectoryLock } from "./owner-lock.js";
import { BlobKeeper } from "./blob-keeper.js";
import { PeerPuller, type PeerCorruption, type PeerSourcesConfig } from "./peer-pull.js";
import { httpSource, storageSource, type BlobSource, type HttpSourceOptions } from "./sources.js";

/**
 * The agent's package cache: packages pulled by digest, verified while they
 * stream in, unpacked once into `<cacheDir>/packages/<hex>/` (read-only) and
 * kept, least recently used first out, within `maxBytes` of unpacked files.
 *
 * - One pull per digest at a time in this process (single flight); the
 *   directory itself is owned by one agent process (see owner-lock.ts).
 * - Sources in order: up to `peers.tries` other agents holding the blob
 *   (peers.ts chooses them), then the shared storage directory if mounted
 *   here and holding the blob, then each manager URL; a failed or corrupted
 *   attempt moves on to the next source, for at most `maxAttempts` attempts
 *   after the peers. A peer whose bytes do not match the digest is reported
 *   (onPeerCorrupt) and not asked again for `distrustMs`.
 * - With `keepBlobs`, the verified blob is kept next to the unpacked tree
 *   (`<cacheDir>/blobs/<hex>`, counted in `maxBytes`) so this agent can serve
 *   it to its peers (openBlob); it goes when the package is evicted.
 * - `acquire()` pins a package while a task runs from it; `gc()` never evicts
 *   a pinned or in-flight package. `ensure()` alone does not pin.
 */

export interface PackageSourcesConfig {
  /** Shared storage mounted locally (`<dir>/blobs/sha256/<hex>`). */
  storageDir?: string;
  /** Current manager base URLs, asked at every pull (the set changes with failover). */
  managerUrls: () => string[];
  /** Bearer token for the managers. */
  token: string;
  /** The cell CA managers are verified against (a cell on TLS). */
  ca?: Buffer;
  /** Other agents to pull from before storage and managers (same token and CA). */
  peers?: PeerSourcesConfig;
}

export interface PackageCacheOptions {
  cacheDir: string;
  /** Budget for unpacked packages, in bytes of regular files. */
  maxBytes: number;
  sources: PackageSourcesConfig;
  /** Keep verified blobs to serve them to peers (see the module comment). */
  keepBlobs?: boolean;
  /** A peer served corrupted content (also logged and counted): the agent reports it to the primary. */
  onPeerCorrupt?: (c: PeerCorruption) => void;
  /** The set of packages or kept blobs changed (the ad should be rewritten). */
  onChange?: () => void;
  /** Limits applied when unpacking (defaults: unpack.ts). */
  extractLimits?: Partial<ExtractLimits>;
  /** Largest compressed blob accepted (default 4 GiB). */
  maxBlobBytes?: number;
  /** Pull attempts across all sources before giving up (default 4). */
  maxAttempts?: number;
  /** Pause before an attempt that revisits a source, doubled each round (default 200 ms, capped at 5 s). */
  retryDelayMs?: number;
  /** Whole-download timeout per attempt (default 10 min). */
  downloadTimeoutMs?: number;
  /** Connect / response-headers timeout per attempt (default 10 s). */
  responseTimeoutMs?: number;
  logger?: Logger;
}

export interface PackageCacheStats {
  /** ensure/acquire calls answered from the cache. */
  hits: number;
  /** ensure/acquire calls that started a pull. */
  misses: number;
  /** ensure/acquire calls that joined a pull already under way. */
  coalesced: number;
  /** Packages unpacked (successful pulls). */
  extractions: number;
  /** Blob bytes read from any source, including failed attempts. */
  bytesTransferred: number;
  bytesFromStorage: number;
  bytesFromHttp: number;
  bytesFromPeers: number;
  /** Attempts whose bytes did not match the digest. */
  integrityFailures: number;
  /** Of those, attempts on peers. */
  peerIntegrityFailures: number;
  /** Peers that answered busy (503). */
  peerBusy: number;
  /** Pulls that found no peer able to serve them and went on to storage or a manager. */
  peerFallbacks: number;
  evictions: number;
}

export interface PackageLease {
  readonly digest: Digest;
  readonly path: string;
  /** Unpins; idempotent. */
  release(): void;
}

interface CachedPackage {
  /** Unpacked bytes. */
  bytes: number;
  /** Size of the kept blob, when there is one. */
  blobBytes?: number;
  lastUsed: number;
}

const HEX_NAME = /^[0-9a-f]{64}$/;

export class PackageCache {
  private readonly cacheDir: string;
  private readonly packagesDir: string;
  private readonly blobsDir: string;
  private readonly keepBlobs: boolean;
  private readonly maxBytes: number;
  private readonly sources: PackageSourcesConfig;
  private readonly extractLimits: Partial<ExtractLimits>;
  private readonly maxBlobBytes: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly downloadTimeoutMs: number;
  private readonly responseTimeoutMs: number;
  private readonly log: Logger;
  private readonly opts: PackageCacheOptions;

  private readonly entries = new Map<Digest, CachedPackage>();
  private readonly inflight = new Map<Digest, Promise<string>>();
  private readonly evicting = new Map<Digest, Promise<void>>();
  private readonly refs = new Map<Digest, number>();
  private readonly counters: PackageCacheStats = {
    hits: 0,
    misses: 0,
    coalesced: 0,
    extractions: 0,
    bytesTransferred: 0,
    bytesFromStorage: 0,
    bytesFromHttp: 0,
    bytesFromPeers: 0,
    integrityFailures: 0,
    peerIntegrityFailures: 0,
    peerBusy: 0,
    peerFallbacks: 0,
    evictions: 0,
  };
  private readonly peers: PeerPuller | undefined;
  /** How managers and peers are asked over HTTP. */
  private readonly httpOptions: HttpSourceOptions;
  private clock = 0;
  private opening: Promise<void> | undefined;
  private lock: DirectoryLock | undefined;
  private gcChain: Promise<unknown> = Promise.resolve();

  constructor(opts: PackageCacheOptions) {
    this.cacheDir = opts.cacheDir;
    this.packagesDir = join(opts.cacheDir, "packages");
    this.blobsDir = join(opts.cacheDir, "blobs");
    this.keepBlobs = opts.keepBlobs ?? false;
    this.opts = opts;
    this.maxBytes = opts.maxBytes;
    this.sources = opts.sources;
    this.extractLimits = opts.extractLimits ?? {};
    this.maxBlobBytes = opts.maxBlobBytes ?? 4 * 1024 ** 3;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 4);
    this.retryDelayMs = opts.retryDelayMs ?? 200;
    this.downloadTimeoutMs = opts.downloadTimeoutMs ?? 600_000;
    this.responseTimeoutMs = opts.responseTimeoutMs ?? 10_000;
    this.log = opts.logger ?? createLogger("package-cache");
    const peers = opts.sources.peers;
    this.httpOptions = { token: opts.sources.token, ...(opts.sources.ca ? { ca: opts.sources.ca } : {}), downloadTimeoutMs: this.downloadTimeoutMs, responseTimeoutMs: this.responseTimeoutMs };
    this.peers = peers && peers.tries > 0 ? new PeerPuller({ config: peers, sourceOptions: this.httpOptions, counters: this.counters, log: this.log, ...(opts.onPeerCorrupt ? { onPeerCorrupt: opts.onPeerCorrupt } : {}) }) : undefined;
  }

  /** Takes the directory lock and loads what is already unpacked; called implicitly by every operation. */
  open(): Promise<void> {
    this.opening ??= this.load().catch((err: unknown) => {
      this.opening = undefined;
      throw err;
    });
    return this.opening;
  }

  /** Releases the directory lock. Unpacked packages stay for the next agent run. */
  async close(): Promise<void> {
    if (this.opening === undefined) return;
    await this.opening.catch(() => undefined);
    await Promise.allSettled([...this.inflight.values()]);
    await this.lock?.release();
    this.lock = undefined;
    this.opening = undefined;
    this.entries.clear();
  }

  /** Path of the unpacked, read-only package; pulls it first if needed. */
  async ensure(digestText: string): Promise<string> {
    const digest = parseDigest(digestText);
    await this.open();
    return this.ensureParsed(digest);
  }

  /** Like ensure(), and pins the package against gc() until released. */
  async acquire(digestText: string): Promise<PackageLease> {
    const digest = parseDigest(digestText);
    await this.open();
    // Pin before any await so a gc() running meanwhile cannot pick it.
    this.refs.set(digest, (this.refs.get(digest) ?? 0) + 1);
    let path: string;
    try {
      path = await this.ensureParsed(digest);
    } catch (err) {
      this.unpin(digest);
      throw err;
    }
    let released = false;
    return {
      digest,
      path,
      release: () => {
        if (released) return;
        released = true;
        this.unpin(digest);
      },
    };
  }

  /** Digests unpacked here (reported to the manager for placement). */
  async list(): Promise<Digest[]> {
    await this.open();
    return [...this.entries.keys()].sort();
  }

  /** Marks a package as just used (LRU order survives restarts through the directory mtime). */
  async touch(digestText: string): Promise<void> {
    const digest = parseDigest(digestText);
    await this.open();
    await this.touchParsed(digest);
  }

  /** Digests whose verified blob is kept here (what this agent serves to peers). */
  async blobs(): Promise<Digest[]> {
    await this.open();
    return [...this.entries.entries()].filter(([, e]) => e.blobBytes !== undefined).map(([d]) => d).sort();
  }

  /** The kept blob's bytes, or undefined when this cache does not hold it. An eviction meanwhile does not cut the stream short (the open file outlives its name). */
  async openBlob(digestText: string): Promise<{ stream: ReadStream; size: number } | undefined> {
    const digest = parseDigest(digestText);
    await this.open();
    const entry = this.entries.get(digest);
    if (entry?.blobBytes === undefined) return undefined;
    let fh: FileHandle;
    try {
      fh = await open(this.blobPathOf(digest), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    return { stream: fh.createReadStream({ highWaterMark: 1 << 20 }), size: entry.blobBytes };
  }

  /** Bytes currently held: unpacked trees and kept blobs. */
  totalBytes(): number {
    let total = 0;
    for (const e of this.entries.values()) total += e.bytes + (e.blobBytes ?? 0);
    return total;
  }

  stats(): PackageCacheStats {
    return { ...this.counters };
  }

  /** Evicts least recently used, unpinned packages until within maxBytes; returns what was evicted. */
  async gc(): Promise<Digest[]> {
    await this.open();
    return this.collect(new Set());
  }

  pathOf(digest: Digest): string {
    return join(this.packagesDir, digestHex(digest));
  }

  blobPathOf(digest: Digest): string {
    return join(this.blobsDir, digestHex(digest));
  }

  private async load(): Promise<void> {
    await mkdir(this.packagesDir, { recursive: true });
    // Tasks (under their own uids) reach their package by path but list nothing; extractions in progress are 0700.
    for (const d of [this.cacheDir, this.packagesDir]) await chmod(d, 0o711);
    this.lock = await acquireDirectoryLock(this.cacheDir);
    for (const d of await readdir(this.packagesDir, { withFileTypes: true })) {
      const path = join(this.packagesDir, d.name);
      if (d.name.startsWith(".")) {
        // Leftover of an interrupted extraction or eviction.
        await removeReadOnlyTree(path);
        continue;
      }
      if (!d.isDirectory() || !HEX_NAME.test(d.name)) {
        this.log.warn({ path }, "ignoring unexpected entry in the package cache");
        continue;
      }
      const st = await lstat(path);
      this.entries.set(`sha256:${d.name}`, { bytes: await treeFileBytes(path), lastUsed: st.mtimeMs });
      this.clock = Math.max(this.clock, st.mtimeMs);
    }
    await this.loadBlobs();
  }

  /** Kept blobs of cached packages count; partial ones and blobs of packages no longer here go. */
  private async loadBlobs(): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
    for (const d of await readdir(this.blobsDir, { withFileTypes: true })) {
      const path = join(this.blobsDir, d.name);
      const entry = HEX_NAME.test(d.name) && d.isFile() ? this.entries.get(`sha256:${d.name}`) : undefined;
      if (!entry || !this.keepBlobs) {
        await rm(path, { force: true, recursive: true });
        continue;
      }
      entry.blobBytes = (await lstat(path)).size;
    }
  }

  /** Strictly increasing use times, so LRU order is total even within one millisecond. */
  private tick(): number {
    this.clock = Math.max(Date.now(), this.clock + 1);
    return this.clock;
  }

  private unpin(digest: Digest): void {
    const n = (this.refs.get(digest) ?? 0) - 1;
    if (n > 0) this.refs.set(digest, n);
    else this.refs.delete(digest);
  }

  private async ensureParsed(digest: Digest): Promise<string> {
    if (this.entries.has(digest)) {
      this.counters.hits += 1;
      await this.touchParsed(digest);
      return this.pathOf(digest);
    }
    const running = this.inflight.get(digest);
    if (running) {
      this.counters.coalesced += 1;
      return running;
    }
    this.counters.misses += 1;
    const flight = this.install(digest).finally(() => this.inflight.delete(digest));
    this.inflight.set(digest, flight);
    return flight;
  }

  private async touchParsed(digest: Digest): Promise<void> {
    const entry = this.entries.get(digest);
    if (!entry) return;
    entry.lastUsed = this.tick();
    const when = new Date(entry.lastUsed);
    await utimes(this.pathOf(digest), when, when).catch((err: unknown) => {
      this.log.warn({ digest, err }, "could not record package use time");
    });
  }

  private async install(digest: Digest): Promise<string> {
    await this.evicting.get(digest);
    const dest = this.pathOf(digest);
    const bytes = (await isDirectory(dest)) ? await treeFileBytes(dest) : await this.pull(digest, dest);
    const blobBytes = await this.keptBlobSize(digest);
    this.entries.set(digest, { bytes, ...(blobBytes !== undefined ? { blobBytes } : {}), lastUsed: this.tick() });
    try {
      await this.collect(new Set([digest]));
    } catch (err) {
      this.log.warn({ err }, "package cache garbage collection failed");
    }
    this.opts.onChange?.();
    return dest;
  }

  private sourceList(): BlobSource[] {
    return this.sources.managerUrls().map((url) => httpSource(url, this.httpOptions));
  }

  private async keptBlobSize(digest: Digest): Promise<number | undefined> {
    if (!this.keepBlobs) return undefined;
    try {
      return (await lstat(this.blobPathOf(digest))).size;
    } catch {
      return undefined;
    }
  }

  /** Tries the sources in turn; returns the unpacked bytes. */
  private async pull(digest: Digest, dest: string): Promise<number> {
    const fromPeer = await this.peers?.pull(digest, async (source) => {
      try {
        return await this.pullFrom(source, digest, dest);
      } catch (err) {
        // Another pull of this digest (a previous agent run) finished first.
        if (toTorcaError(err).code === "conflict" && (await isDirectory(dest))) return treeFileBytes(dest);
        throw err;
      }
    });
    if (fromPeer !== undefined) return fromPeer;
    const sources = this.sourceList();
    if (this.sources.storageDir !== undefined) {
      const storage = storageSource(this.sources.storageDir);
      if (await storage.has(digest)) sources.unshift(storage);
    }
    if (sources.length === 0) throw new NotFoundError("package blob", digest);
    const failures: TorcaError[] = [];
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const source = sources[attempt % sources.length] as BlobSource;
      const round = Math.floor(attempt / sources.length);
      if (round > 0 && attempt % sources.length === 0) await sleep(Math.min(5000, this.retryDelayMs * 2 ** (round - 1)));
      try {
        const bytes = await this.pullFrom(source, digest, dest);
        this.log.info({ digest, source: source.name, bytes }, "package unpacked");
        return bytes;
      } catch (err) {
        const e = toTorcaError(err);
        // Verified content that is unsafe or too large is the same from every source.
        if (e.code === "unsafe_archive" || e.code === "payload_too_large") throw e;
        if (e.code === "conflict" && (await isDirectory(dest))) return treeFileBytes(dest);
        if (e.code === "integrity") this.counters.integrityFailures += 1;
        this.log.warn({ digest, source: source.name, attempt: attempt + 1, err: e }, "package pull attempt failed");
        failures.push(e);
      }
    }
    const detail = failures.map((f) => f.message).join("; ");
    if (failures.some((f) => f.code === "integrity")) {
      throw new IntegrityError(`package ${digest}: no source delivered matching content in ${failures.length} attempts (${detail})`, { digest });
    }
    const last = failures[failures.length - 1] as TorcaError;
    // Every source said the same thing (not found, token refused): that is the answer.
    if (failures.every((f) => f.code === last.code) && last.code !== "unavailable") throw last;
    throw new UnavailableError(`package ${digest}: pull failed after ${failures.length} attempts (${detail})`, last);
  }

  /** One attempt: stream → sha256 → gunzip → safe extraction; committed only if the digest matches. */
  private async pullFrom(source: BlobSource, digest: Digest, dest: string): Promise<number> {
    const input = await source.open(digest);
    const hasher = new DigestingStream({ maxBytes: this.maxBlobBytes });
    const keeper = this.keepBlobs ? await BlobKeeper.create(this.blobsDir, digest) : undefined;
    // Errors of the source reach the extractor through the hasher, which pipeline() destroys with them.
    const piping = keeper ? pipeline(input, keeper, hasher) : pipeline(input, hasher);
    piping.catch(() => undefined);
    const mismatch = (actual: Digest): IntegrityError =>
      new IntegrityError(`${source.name} sent content with digest ${actual} for ${digest}`, { expected: digest, actual, source: source.name });
    try {
      const result = await extractSafely(hasher, dest, this.extractLimits, {
        keepSourceOnError: true,
        beforeCommit: async () => {
          await piping;
          const actual = hasher.digest();
          if (actual !== digest) throw mismatch(actual);
          await keeper?.commit(this.blobPathOf(digest));
        },
      });
      this.counters.extractions += 1;
      return result.bytes;
    } catch (err) {
      // A corrupted blob can look like a broken or unsafe archive before its
      // digest is known: read the rest to tell corruption from a bad package.
      if (err instanceof UnsafeArchiveError) {
        const actual = await finishDigest(hasher, piping);
        if (actual !== undefined && actual !== digest) throw mismatch(actual);
      }
      hasher.destroy();
      input.destroy();
      throw err;
    } finally {
      await keeper?.discard();
      this.counters.bytesTransferred += hasher.bytes;
      if (source.kind === "http") this.counters.bytesFromHttp += hasher.bytes;
      else if (source.kind === "peer") this.counters.bytesFromPeers += hasher.bytes;
      else this.counters.bytesFromStorage += hasher.bytes;
    }
  }

  /** Serialized so that two collections never pick the same victim. */
  private collect(protect: ReadonlySet<Digest>): Promise<Digest[]> {
    const run = this.gcChain.then(() => this.collectNow(protect));
    this.gcChain = run.catch(() => undefined);
    return run;
  }

  private async collectNow(protect: ReadonlySet<Digest>): Promise<Digest[]> {
    let total = this.totalBytes();
    if (total <= this.maxBytes) return [];
    const byAge = [...this.entries.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    const evicted: Digest[] = [];
    for (const [digest, entry] of byAge) {
      if (total <= this.maxBytes) break;
      // Checked right before the synchronous delete: no acquire() can slip in between.
      if (protect.has(digest) || this.refs.has(digest) || this.inflight.has(digest) || this.entries.get(digest) !== entry) continue;
      this.entries.delete(digest);
      const removal = this.remove(digest);
      this.evicting.set(digest, removal);
      try {
        await removal;
      } finally {
        this.evicting.delete(digest);
      }
      total -= entry.bytes;
      evicted.push(digest);
      this.counters.evictions += 1;
      this.log.info({ digest, bytes: entry.bytes }, "package evicted");
    }
    if (evicted.length > 0) this.opts.onChange?.();
    return evicted;
  }

  /** Renamed away first: a crash halfway through deleting must not leave a partial package under its real name. */
  private async remove(digest: Digest): Promise<void> {
    // The blob first: once the tree is gone, nothing may still offer it to peers.
    await rm(this.blobPathOf(digest), { force: true });
    const doomed = join(this.packagesDir, `.${digestHex(digest)}.${randomBytes(6).toString("hex")}.evicting`);
    try {
      await rename(this.pathOf(digest), doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    await removeReadOnlyTree(doomed);
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** Reads what is left of `hasher` and returns its digest, or undefined if the source failed. */
async function finishDigest(hasher: DigestingStream, piping: Promise<void>): Promise<Digest | undefined> {
  try {
    for await (const _chunk of hasher as Readable) {
      /* only the digest matters now */
    }
    await piping;
    return hasher.digest();
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
