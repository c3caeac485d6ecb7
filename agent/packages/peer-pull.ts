import type { Logger } from "../../src/common/logger.js";
import { toTorcaError, type TorcaError } from "../../src/common/errors.js";
import type { Digest } from "../../src/storage/digest.js";
import { Distrust, rankPeers, type PeerDirectory, type PeerSelf } from "./peers.js";
import { httpSource, SourceBusyError, type BlobSource, type HttpSourceOptions } from "./sources.js";

/**
 * The peer step of a pull (docs/packages.md): asks up to `tries` peers in
 * turn, waiting while peers are busy or agents that asked earlier are still
 * pulling, and remembers peers that sent corrupted content. What one attempt
 * does with a source (stream, verify, unpack) is the cache's.
 */

export interface PeerSourcesConfig {
  directory: PeerDirectory;
  /** This agent: never asked, and the reference for nearness. */
  self: PeerSelf;
  /** Peers asked for one blob. */
  tries: number;
  /** How long a pull waits for peers that are busy, or still pulling the blob themselves, before storage (default 30 s). */
  waitMs?: number;
  /** A peer that sent corrupted bytes is not asked again for this long (default 10 min). */
  distrustMs?: number;
}

/** A peer sent bytes that do not match the digest asked for. */
export interface PeerCorruption {
  peer: string;
  url: string;
  digest: Digest;
  actual: Digest;
}

export interface PeerPullCounters {
  integrityFailures: number;
  peerIntegrityFailures: number;
  peerBusy: number;
  peerFallbacks: number;
}

export interface PeerPullerOptions {
  config: PeerSourcesConfig;
  sourceOptions: HttpSourceOptions;
  /** Updated in place (the cache's counters). */
  counters: PeerPullCounters;
  log: Logger;
  onPeerCorrupt?: (c: PeerCorruption) => void;
}

export class PeerPuller {
  /** Peers that sent corrupted bytes, not asked for a while. */
  private readonly distrusted = new Distrust();

  constructor(private readonly o: PeerPullerOptions) {}

  /**
   * The unpacked bytes from the first peer whose attempt succeeds, or
   * undefined when none did. While peers are busy, or agents that started
   * earlier are still pulling the blob, the holders are read again after a
   * pause (peers that finished a pull join), until `waitMs` has passed.
   * Content that is unsafe or too large is the same from every source: that
   * error is thrown at once.
   */
  async pull(digest: Digest, attempt: (source: BlobSource) => Promise<number>): Promise<number | undefined> {
    const p = this.o.config;
    const deadline = Date.now() + (p.waitMs ?? 30_000);
    const failed = new Set<string>();
    for (let round = 0; ; round++) {
      const { holders, pulling } = await p.directory.lookup(digest, p.self.id).catch(() => ({ holders: [], pulling: [] }));
      const candidates = rankPeers(p.self, holders, new Set([...failed, ...this.distrusted.now(Date.now())]), p.tries - failed.size);
      let busy = 0;
      for (const peer of candidates) {
        const source = httpSource(peer.url, { ...this.o.sourceOptions, peer: peer.id });
        try {
          const bytes = await attempt(source);
          this.o.log.info({ digest, source: source.name, bytes }, "package unpacked");
          return bytes;
        } catch (err) {
          const e = toTorcaError(err);
          if (e.code === "unsafe_archive" || e.code === "payload_too_large") throw e;
          if (e instanceof SourceBusyError) {
            this.o.counters.peerBusy += 1;
            busy += 1;
            continue;
          }
          failed.add(peer.id);
          if (e.code === "integrity") this.distrust(peer.id, peer.url, digest, e);
          else this.o.log.warn({ digest, source: source.name, err: e }, "pulling from a peer failed; trying the next source");
        }
      }
      const forthcoming = pulling.some((a) => !failed.has(a) && !this.distrusted.has(a, Date.now()));
      if ((busy === 0 && !forthcoming) || failed.size >= p.tries || Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, 100 * 2 ** round)));
    }
    this.o.counters.peerFallbacks += 1;
    return undefined;
  }

  /** A peer sent bytes that are not what it was asked for: loud, counted, reported, and that peer is not asked again for a while. */
  private distrust(peer: string, url: string, digest: Digest, e: TorcaError): void {
    this.o.counters.integrityFailures += 1;
    this.o.counters.peerIntegrityFailures += 1;
    this.distrusted.add(peer, Date.now() + (this.o.config.distrustMs ?? 600_000));
    const actual = (e.context as { actual?: Digest }).actual ?? digest;
    this.o.log.error({ digest, actual, peer, url }, "a peer served a blob that does not match its digest; not asking that peer again for a while");
    this.o.onPeerCorrupt?.({ peer, url, digest, actual });
  }
}
