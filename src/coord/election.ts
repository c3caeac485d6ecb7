import { EventEmitter } from "node:events";
import type { z } from "zod";
import { ConflictError } from "../common/errors.js";
import { readJson } from "../common/json.js";
import type { Logger } from "../common/logger.js";
import { CandidateSchema, LeaderInfoSchema } from "../common/schemas/coord.js";
import { zpaths } from "./paths.js";
import { isZkCode, ZK, type ZkSession } from "./zk.js";

/**
 * Leader election among managers: each candidate creates an ephemeral
 * sequential node under /election and watches only its predecessor (no herd).
 * The lowest node wins, bumps the epoch with a compare-and-set and publishes
 * itself at /leader (ephemeral, so it vanishes with its session).
 *
 * The epoch is the fence: everything the primary sends to agents carries it,
 * and agents refuse anything lower than the highest epoch they have seen.
 */

export type Candidate = z.infer<typeof CandidateSchema>;
export type LeaderInfo = z.infer<typeof LeaderInfoSchema>;

export interface ElectionEvents {
  elected: [LeaderInfo];
  /** Our session is gone; we are no longer primary (if we ever were). */
  deposed: [];
}

export class Election extends EventEmitter<ElectionEvents> {
  private myNode?: string;
  private leader?: LeaderInfo;
  private stopped = false;
  private readonly p;

  constructor(private readonly zk: ZkSession, root: string, private readonly me: Candidate, private readonly log?: Logger) {
    super();
    this.p = zpaths(root);
    zk.once("expired", () => this.depose());
    zk.once("closed", () => this.depose());
  }

  get isPrimary(): boolean {
    return this.leader !== undefined && !this.stopped && this.zk.isAlive;
  }

  get info(): LeaderInfo | undefined {
    return this.leader;
  }

  /** Joins the election; resolves once the candidate node exists (not when elected). */
  async start(): Promise<void> {
    await this.zk.ensurePath(this.p.election);
    await this.zk.ensurePath(this.p.root);
    await this.zk.createIfAbsent(this.p.epoch, "0");
    const created = await this.zk.create(`${this.p.election}/n_`, JSON.stringify(this.me), "ephemeral-sequential");
    this.myNode = created.slice(created.lastIndexOf("/") + 1);
    this.log?.info({ node: this.myNode }, "joined election");
    void this.check();
  }

  private depose(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.leader) this.log?.error({ epoch: this.leader.epoch }, "deposed: session lost");
    this.leader = undefined;
    this.emit("deposed");
  }

  /** Leaves the election (deletes the candidate node); the session stays up. */
  async resign(): Promise<void> {
    const node = this.myNode;
    this.stopped = true;
    this.leader = undefined;
    if (node && this.zk.isAlive) {
      await this.zk.delete(`${this.p.election}/${node}`).catch(() => undefined);
      await this.zk.delete(this.p.leader).catch(() => undefined);
    }
  }

  private async check(): Promise<void> {
    if (this.stopped || !this.myNode) return;
    try {
      const nodes = (await this.zk.children(this.p.election)).filter((n) => n.startsWith("n_")).sort();
      const i = nodes.indexOf(this.myNode);
      if (i < 0) {
        // Our node vanished while the session lives: someone deleted it. Treat as deposed.
        this.depose();
        return;
      }
      if (i === 0) {
        await this.takeOver();
        return;
      }
      const pred = nodes[i - 1]!;
      const stat = await this.zk.exists(`${this.p.election}/${pred}`, (ev) => {
        if (ev === "deleted") void this.check();
      });
      if (!stat) void this.check();
    } catch (e) {
      this.log?.warn({ err: e }, "election check failed");
      if (this.zk.isAlive && !this.stopped) setTimeout(() => void this.check(), 500).unref();
    }
  }

  private async takeOver(): Promise<void> {
    const epoch = await bumpEpoch(this.zk, this.p.epoch);
    const info: LeaderInfo = { ...this.me, epoch, since: Date.now() };
    const data = JSON.stringify(info);
    // The previous primary's /leader is ephemeral under its (now dead) session, so it is gone;
    // a leftover from *our own* earlier term is replaced.
    for (let tries = 0; tries < 3; tries++) {
      if (await this.zk.createIfAbsent(this.p.leader, data, "ephemeral")) break;
      const cur = await this.zk.getIfExists(this.p.leader);
      if (cur && cur.stat.ephemeralOwner !== undefined) {
        await this.zk.delete(this.p.leader, cur.stat.version).catch(() => undefined);
      }
    }
    if (this.stopped || !this.zk.isAlive) return;
    this.leader = info;
    this.log?.info({ epoch }, "elected primary");
    this.emit("elected", info);
  }
}

/** Compare-and-set increment of the epoch counter; retries on concurrent bumps. */
export async function bumpEpoch(zk: ZkSession, path: string): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const cur = await zk.get(path);
    const next = (Number(cur.data.toString()) || 0) + 1;
    try {
      await zk.set(path, String(next), cur.stat.version);
      return next;
    } catch (e) {
      if (!isZkCode(e, ZK.BADVERSION)) throw e;
    }
  }
  throw new ConflictError("could not bump the epoch: too much contention");
}

export async function readLeader(zk: ZkSession, root: string, watch?: () => void): Promise<LeaderInfo | undefined> {
  const p = zpaths(root);
  // With a watch, the caller also hears when the next leader appears.
  const r = await zk.getIfExists(p.leader, watch ? () => watch() : undefined);
  return r ? readJson(LeaderInfoSchema, r.data, p.leader) : undefined;
}
