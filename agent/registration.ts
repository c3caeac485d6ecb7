import { writeFileSync } from "node:fs";
import { readJsonFileIfValid } from "../src/common/json.js";
import type { Logger } from "../src/common/logger.js";
import type { AgentAd } from "../src/common/protocol.js";
import { SessionCredentialsSchema } from "../src/common/schemas/coord.js";
import { readLeader, type LeaderInfo } from "../src/coord/election.js";
import { zpaths, type ZPaths } from "../src/coord/paths.js";
import { SessionKeeper } from "../src/coord/session-keeper.js";
import type { SessionCredentials, ZkSession } from "../src/coord/zk.js";
import { ownedBy } from "../naming/registration.js";
import type { EpochFence } from "./epoch-fence.js";
import type { ZkAuth } from "../src/coord/zk/acl.js";

/**
 * The agent in ZooKeeper: its ad znode (ephemeral: the manager's liveness
 * signal), the primary it reports to (/leader) and the epoch it fences with.
 * The session is kept by the SessionKeeper; after an expiry the ad is written
 * again on a new session. The session's credentials are kept in a file, so an
 * agent restarted within the session timeout resumes it and its node never
 * blinks.
 */

/** How often the ad znode is rewritten when only the machine's load moved. */
const AD_LOAD_REFRESH_MS = 60_000;

export interface RegistrationOptions {
  id: string;
  zookeeper: string;
  root: string;
  sessionTimeoutMs: number;
  /** Torca's ZooKeeper credential (cluster.zookeeperAuth). */
  auth?: ZkAuth;
  /** Where the session's credentials are kept (mode 0600). */
  sessionFile: string;
  fence: EpochFence;
  log: Logger;
  /** The ad as of now. */
  ad: () => Promise<AgentAd>;
  /** The ad is written on this session (also after a reconnect of it): report at once. */
  onRegistered: (zk: ZkSession) => void;
  onReconnected: () => void;
  /** A new primary was elected. */
  onLeaderChanged: (leader: LeaderInfo) => void;
}

export class AgentRegistration {
  private readonly keeper: SessionKeeper;
  private readonly p: ZPaths;
  private stopping = false;
  private leaderInfo?: LeaderInfo;
  /** The ad last written to the znode (without its load) and when. */
  private adWritten = { facts: "", at: 0 };

  constructor(private readonly o: RegistrationOptions) {
    this.p = zpaths(o.root);
    // A new session follows an expiry only: a session that ends closed (closed here, or refused by the client) is not replaced.
    this.keeper = new SessionKeeper(
      {
        onSession: (zk) => this.register(zk),
        onSessionLost: () => o.log.warn("ZooKeeper session expired; re-registering with a new session"),
      },
      { connect: o.zookeeper, sessionTimeoutMs: o.sessionTimeoutMs, ...(o.auth ? { auth: o.auth } : {}), resume: () => this.savedCredentials(), ends: ["expired"], renewDelayMs: 100, purpose: "registration", logger: o.log },
    );
  }

  /** The primary as last read from /leader. */
  get leader(): LeaderInfo | undefined {
    return this.leaderInfo;
  }

  get zookeeperState(): "connected" | "disconnected" | "expired" | "connecting" {
    const zk = this.keeper.session;
    return zk ? (zk.isConnected ? "connected" : zk.isAlive ? "disconnected" : "expired") : "connecting";
  }

  /** When the agent's session was last known alive (ZkSession.knownAliveAt); undefined without a live session. */
  zookeeperAliveAt(now: number): number | undefined {
    return this.keeper.session?.knownAliveAt(now);
  }

  /** Registers; resolves after the first attempt (later ones run in the background). */
  start(): Promise<void> {
    return this.keeper.start();
  }

  private savedCredentials(): SessionCredentials | undefined {
    return readJsonFileIfValid(SessionCredentialsSchema, this.o.sessionFile, (e) => this.o.log.warn({ err: e }, "ignoring an unreadable saved ZooKeeper session"));
  }

  private async register(zk: ZkSession): Promise<void> {
    writeFileSync(this.o.sessionFile, JSON.stringify(zk.credentials), { mode: 0o600 });
    zk.on("reconnected", () => this.o.onReconnected());
    await zk.ensurePath(this.p.agents);
    const data = JSON.stringify(await this.o.ad());
    const path = this.p.agent(this.o.id);
    const existing = await zk.exists(path);
    if (existing && existing.ephemeralOwner !== undefined && !ownedBy(existing.ephemeralOwner, zk.sessionId)) {
      // A node left by our previous incarnation's (dying) session: take it over now.
      await zk.delete(path);
    }
    if (!(await zk.createIfAbsent(path, data, "ephemeral"))) await zk.set(path, data);
    await this.watchEpoch(zk);
    await this.watchLeader(zk);
    this.o.log.info({ path }, "registered");
    this.o.onRegistered(zk);
  }

  private async watchEpoch(zk: ZkSession): Promise<void> {
    if (!zk.isAlive || this.stopping) return;
    const r = await zk.getIfExists(this.p.epoch, () => void this.watchEpoch(zk).catch(() => undefined));
    if (r) this.o.fence.note(Number(r.data.toString()) || 0);
  }

  private async watchLeader(zk: ZkSession): Promise<void> {
    if (!zk.isAlive || this.stopping) return;
    const info = await readLeader(zk, this.o.root, () => void this.watchLeader(zk).catch(() => undefined));
    const changed = info?.epoch !== this.leaderInfo?.epoch;
    this.leaderInfo = info;
    if (info) this.o.fence.note(info.epoch);
    if (changed && info) {
      this.o.log.info({ leader: info.id, epoch: info.epoch }, "primary changed; reporting");
      this.o.onLeaderChanged(info);
    }
  }

  /**
   * Rewrites the ad znode when what the scheduler reads from it changed, and
   * for the load figure (shown by backups' pages) only every AD_LOAD_REFRESH_MS:
   * every manager watches every ad, so a rewrite per report interval cost each
   * manager a read and a parse per agent per interval (1,000 a second at
   * 10,000 machines) and ZooKeeper a third of its write capacity. The primary
   * gets the load in every report anyway.
   */
  async refreshAd(ad: AgentAd): Promise<void> {
    const zk = this.keeper.session;
    if (!zk?.isConnected) return;
    const facts = JSON.stringify({ ...ad, load: undefined });
    if (facts === this.adWritten.facts && Date.now() - this.adWritten.at < AD_LOAD_REFRESH_MS) return;
    await zk
      .set(this.p.agent(this.o.id), JSON.stringify(ad))
      .then(() => {
        this.adWritten = { facts, at: Date.now() };
      })
      .catch(() => undefined);
  }

  /**
   * Stops keeping the session: no new one is opened and no watch re-armed.
   * The session itself is left open on purpose: closing it would delete the
   * agent's znode at once, and the primary would move every task of a node
   * that is only restarting. The next incarnation resumes the session
   * (sessionFile); if none does within the session timeout, ZooKeeper expires
   * it and the node is lost as after a crash. The open native session keeps
   * the process alive: the caller exits.
   */
  stop(): void {
    this.stopping = true;
    this.keeper.stop();
  }

  /** A clean shutdown: removes the ad znode and closes the session now. */
  async deregister(): Promise<void> {
    const zk = this.keeper.session;
    if (!zk) return;
    await zk.delete(this.p.agent(this.o.id)).catch(() => undefined);
    zk.close();
  }
}
