import { createHash } from "node:crypto";
import type { Got } from "got";
import { z } from "zod";
import { parseBody } from "../../src/common/protocol.js";
import type { Digest } from "../../src/storage/digest.js";

/**
 * Finding and ordering the agents that can serve a blob. The holders come
 * from the manager (`GET /v1/blobs/:digest/peers`, built from the ads every
 * manager already watches), not from ZooKeeper: one request per pull
 * instead of a read of every ad in the cell, and agents need no watch on
 * each other (docs/packages.md, "Finding peers").
 */

export const PeerCandidateSchema = z.object({
  id: z.string().min(1),
  url: z.string().url(),
  attributes: z.record(z.string()).default({}),
  /** One-minute load average per allocatable core (0 when unknown). */
  load: z.number().min(0).default(0),
});
export type PeerCandidate = z.infer<typeof PeerCandidateSchema>;

export const PeerListSchema = z.object({ digest: z.string(), peers: z.array(PeerCandidateSchema), pulling: z.array(z.string()).default([]) });

export interface PeerLookup {
  /** Agents serving the blob now (in any order). */
  holders: PeerCandidate[];
  /** Agents that started pulling it before the asker and do not hold it yet: worth waiting for. */
  pulling: string[];
}

/** Who can serve a blob; asking also tells that `self` is about to pull it. */
export interface PeerDirectory {
  lookup(digest: Digest, self: string): Promise<PeerLookup>;
}

export interface PeerSelf {
  id: string;
  attributes: Record<string, string>;
}

/** Labels that tell how near a peer is, nearest first: sharing the first is nearer than sharing only the second. */
export const NEARNESS_LABELS = ["rack", "zone"] as const;

/** 0 for a peer in the same rack, 1 in the same zone, 2 for any other. */
export function distanceTo(self: PeerSelf, peer: PeerCandidate): number {
  for (const [i, label] of NEARNESS_LABELS.entries()) {
    const mine = self.attributes[label];
    if (mine !== undefined && peer.attributes[label] === mine) return i;
  }
  return NEARNESS_LABELS.length;
}

/** Loads closer than this count as equal, so the spread below decides between them. */
const LOAD_STEP = 0.25;

/** A number fixed per (asker, peer) pair: equally good peers are ordered differently by each asker, so they share the work. */
function spread(self: string, peer: string): number {
  return createHash("sha256").update(`${self}\0${peer}`).digest().readUInt32BE(0);
}

/**
 * The peers to try, in order: never this agent itself nor a distrusted peer;
 * nearest first (rack, then zone), then least loaded, then an order of the
 * asker's own, at most `limit`.
 */
export function rankPeers(self: PeerSelf, holders: readonly PeerCandidate[], distrusted: ReadonlySet<string>, limit: number): PeerCandidate[] {
  const keyed = holders
    .filter((p) => p.id !== self.id && !distrusted.has(p.id))
    .map((p) => ({ p, key: [distanceTo(self, p), Math.floor(p.load / LOAD_STEP), spread(self.id, p.id)] as const }));
  keyed.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2]);
  return keyed.slice(0, Math.max(0, limit)).map((k) => k.p);
}

/** Peers that sent corrupted content, each until a time; pure (time passed in). */
export class Distrust {
  private readonly until = new Map<string, number>();

  add(peer: string, until: number): void {
    this.until.set(peer, until);
  }

  has(peer: string, now: number): boolean {
    return (this.until.get(peer) ?? 0) > now;
  }

  /** The peers distrusted at `now` (forgetting those whose time is over). */
  now(now: number): Set<string> {
    for (const [peer, until] of this.until) if (until <= now) this.until.delete(peer);
    return new Set(this.until.keys());
  }
}

/** The holders as the current primary (or any manager) knows them from the ads. */
export function managerPeerDirectory(managerUrls: () => string[], http: Got): PeerDirectory {
  return {
    async lookup(digest, self) {
      for (const url of managerUrls()) {
        try {
          const body = await http.get(`${url.replace(/\/+$/, "")}/v1/blobs/${digest}/peers`, { searchParams: { agent: self } }).json<unknown>();
          const list = parseBody(PeerListSchema, body);
          return { holders: list.peers, pulling: list.pulling };
        } catch {
          // The next manager, or no peers: shared storage is always the fallback.
        }
      }
      return { holders: [], pulling: [] };
    },
  };
}
