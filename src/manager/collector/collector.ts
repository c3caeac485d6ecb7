import { EventEmitter } from "node:events";
import type { z } from "zod";
import { readJson, readJsonIfValid } from "../../common/json.js";
import type { Logger } from "../../common/logger.js";
import { parallel } from "../../common/parallel.js";
import { NodeAdminSchema } from "../../common/schemas/coord.js";
import { AgentAdSchema, type AgentAd, type AgentReport } from "../../common/protocol.js";
import type { NodeInfo, NodeState } from "../../common/types.js";
import { zpaths, type ZPaths } from "../../coord/paths.js";
import { retryRead } from "../../coord/read-retry.js";
import type { Watcher, ZkSession } from "../../coord/zk.js";

/**
 * The collector: what every manager (primary and backups) knows about machines.
 *
 * Liveness comes from the agents' ephemeral znodes (/agents/<id>): a node whose
 * znode is gone is disconnected, because ZooKeeper expired its session; the
 * primary declares it lost after the disconnect grace (primary/disconnect.ts). The agent
 * rewrites its znode when its offer changes (and once a minute for its load),
 * so backups see the same picture as the primary. Administrative state (draining) lives in
 * persistent znodes (/nodes/<id>), and so does the primary's declaration that a node is lost:
 * backups, and the next primary, show it lost too, until the agent registers again (an ad
 * created after the declaration). Task reports arrive over HTTP at the primary.
 */

const MAX_PARALLEL_LOADS = 100;

type AdminState = z.infer<typeof NodeAdminSchema>;

export interface CollectorEvents {
  "node-up": [NodeInfo];
  "node-lost": [NodeInfo];
  "node-changed": [NodeInfo];
}

export class Collector extends EventEmitter<CollectorEvents> {
  private readonly ads = new Map<string, AgentAd>();
  private readonly admin = new Map<string, AdminState>();
  private readonly known = new Map<string, NodeInfo>();
  private readonly lastReport = new Map<string, number>();
  /** The creation zxid of each node's last ad seen: a lost declaration covers ads up to the one it names. */
  private readonly adCzxid = new Map<string, number>();
  /** What the scheduler cares about per node (all but load and report time): a change of only the rest is no event. */
  private readonly placementFacts = new Map<string, string>();
  /** Every id ever known, kept sorted (a binary insert per new node): no sort per `nodes()` call. */
  private readonly ids: string[] = [];
  /** `nodes()` as last built; dropped whenever a node is added or changes in what placement uses. */
  private sorted?: readonly NodeInfo[];
  /** `nodesIn`'s lists, and the `nodes()` array they were built from (every state change makes a new one). */
  private readonly byState = new Map<NodeState, NodeInfo[]>();
  private byStateOf?: readonly NodeInfo[];
  private readonly p: ZPaths;
  private closed = false;

  constructor(private readonly zk: ZkSession, root: string, private readonly log?: Logger) {
    super();
    this.p = zpaths(root);
  }

  async start(): Promise<void> {
    await this.zk.ensurePath(this.p.agents);
    await this.zk.ensurePath(this.p.nodes);
    await this.loadAdminList();
    await this.loadAgentList();
  }

  close(): void {
    this.closed = true;
  }

  /**
   * Every node known, by id. The same array is returned until something changes,
   * so the many callers per tick (and the scheduler's node index, cached per
   * array) share one build: with 10,000 nodes, sorting on every call was most of
   * the primary's time.
   */
  nodes(): readonly NodeInfo[] {
    this.sorted ??= this.ids.map((id) => this.known.get(id)!);
    return this.sorted;
  }

  node(id: string): NodeInfo | undefined {
    return this.known.get(id);
  }

  /** The nodes in one state, in id order: built once per `nodes()` array, so a tick's checks need no scan of every node. */
  nodesIn(state: NodeState): readonly NodeInfo[] {
    const all = this.nodes();
    if (this.byStateOf !== all) {
      this.byState.clear();
      for (const n of all) {
        const list = this.byState.get(n.state);
        if (list) list.push(n);
        else this.byState.set(n.state, [n]);
      }
      this.byStateOf = all;
    }
    return this.byState.get(state) ?? [];
  }

  /** Records a report's dynamic facts (cache content, load) for the scheduler. */
  noteReport(report: AgentReport): void {
    this.lastReport.set(report.agentId, Date.now());
    const n = this.known.get(report.agentId);
    if (!n) return;
    n.cachedPackages = report.cachedPackages;
    if (report.load) n.load = report.load;
    n.lastReportAt = Date.now();
  }

  /**
   * The primary declares a disconnected node lost (its grace ran out, or an
   * admin confirmed it): recorded in its admin znode, so every manager shows
   * it lost until its agent registers again.
   */
  async markLost(id: string, now: number): Promise<void> {
    const n = this.known.get(id);
    if (!n || n.state === "lost") return;
    await this.writeAdmin(id, { ...(this.admin.get(id) ?? { drain: false }), lost: { at: now, adCzxid: this.adCzxid.get(id) ?? 0 } });
  }

  async setDrain(id: string, drain: boolean): Promise<void> {
    await this.writeAdmin(id, { ...(this.admin.get(id) ?? {}), drain });
  }

  private async writeAdmin(id: string, state: AdminState): Promise<void> {
    const path = this.p.node(id);
    const data = JSON.stringify(state);
    await this.zk.putRetrying(this.p.nodes, path, data);
    this.admin.set(id, state);
    this.refresh(id);
  }

  /** Declared lost, and no ad registered since. */
  private isLost(id: string): boolean {
    const lost = this.admin.get(id)?.lost;
    return lost !== undefined && (this.adCzxid.get(id) ?? 0) <= lost.adCzxid;
  }

  private async loadAgentList(): Promise<void> {
    if (this.closed) return;
    const ids = await this.zk.children(this.p.agents, () => this.retrying(() => this.loadAgentList()));
    const live = new Set(ids);
    for (const id of [...this.ads.keys()]) {
      if (!live.has(id)) {
        this.ads.delete(id);
        this.refresh(id);
      }
    }
    // Bounded: 10,000 reads answered at once are handled in one synchronous stretch, long enough
    // (seconds) for this manager's own session to expire while it registers a large cell.
    await parallel(
      ids.filter((id) => !this.ads.has(id)),
      MAX_PARALLEL_LOADS,
      (id) => this.loadAgent(id),
    );
  }

  // One watcher each for all agent and all admin znodes (told the path), not a closure per node.
  private readonly agentWatcher: Watcher = (ev, path) => {
    const id = path.slice(this.p.agents.length + 1);
    if (ev === "changed" || ev === "created") this.retrying(() => this.loadAgent(id));
  };

  private readonly adminWatcher: Watcher = (ev, path) => {
    const id = path.slice(this.p.nodes.length + 1);
    // getIfExists also reports the node's creation: a first drain set by the primary reaches backups.
    if (ev === "changed" || ev === "created") this.retrying(() => this.loadAdmin(id).then(() => this.refresh(id)));
  };

  private async loadAgent(id: string): Promise<void> {
    if (this.closed) return;
    const r = await this.zk.getIfExists(this.p.agent(id), this.agentWatcher);
    if (!r) {
      this.ads.delete(id);
    } else {
      const ad = readJsonIfValid(AgentAdSchema, r.data, this.p.agent(id), (e) => this.log?.warn({ agent: id, err: e }, "ignoring malformed agent znode"));
      if (!ad) return;
      this.ads.set(id, ad);
      this.adCzxid.set(id, r.stat.czxid);
      if (!this.admin.has(id)) await this.loadAdmin(id);
    }
    this.refresh(id);
  }

  private async loadAdminList(): Promise<void> {
    const ids = await this.zk.children(this.p.nodes);
    await parallel(ids, MAX_PARALLEL_LOADS, (id) => this.loadAdmin(id));
  }

  private async loadAdmin(id: string): Promise<void> {
    if (this.closed) return;
    const r = await this.zk.getIfExists(this.p.node(id), this.adminWatcher);
    this.admin.set(id, r ? readJson(NodeAdminSchema, r.data, this.p.node(id)) : { drain: false });
  }

  private refresh(id: string): void {
    const ad = this.ads.get(id);
    const prev = this.known.get(id);
    const drain = this.admin.get(id)?.drain ?? false;
    if (!ad) {
      const gone: NodeState = this.isLost(id) ? "lost" : "disconnected";
      if (!prev || prev.state === gone || prev.state === "lost") return;
      prev.state = gone;
      this.placementFacts.delete(id);
      this.sorted = undefined;
      if (gone === "lost") {
        this.log?.warn({ node: id }, "node lost");
        this.emit("node-lost", prev);
      } else {
        this.log?.warn({ node: id }, "node disconnected (its ZooKeeper session ended)");
        this.emit("node-changed", prev);
      }
      return;
    }
    const state: NodeState = drain ? "draining" : "ready";
    const info: NodeInfo = {
      id,
      url: ad.url,
      host: ad.host,
      state,
      capacity: ad.capacity,
      allocatable: ad.allocatable,
      attributes: ad.attributes,
      cachedPackages: prev?.cachedPackages.length && prev.lastReportAt > ad.startedAt ? prev.cachedPackages : ad.cachedPackages,
      ...(ad.blobs ? { blobs: ad.blobs } : {}),
      portRange: ad.portRange,
      drivers: ad.drivers,
      ...(ad.devices?.length ? { devices: ad.devices } : {}),
      load: ad.load ?? prev?.load,
      lastReportAt: this.lastReport.get(id) ?? prev?.lastReportAt ?? Date.now(),
    };
    const facts = JSON.stringify([info.url, info.host, info.state, info.capacity, info.allocatable, info.attributes, info.cachedPackages, info.blobs, info.portRange, info.drivers, info.devices]);
    if (prev && prev.state !== "lost" && prev.state !== "disconnected" && this.placementFacts.get(id) === facts) {
      // Only the load moved (agents rewrite their znode for it once a minute):
      // kept in place, and no event, so 10,000 machines do not mean a tick per rewrite.
      prev.load = info.load;
      prev.lastReportAt = info.lastReportAt;
      return;
    }
    this.placementFacts.set(id, facts);
    if (!prev) insertSorted(this.ids, id);
    this.known.set(id, info);
    this.sorted = undefined;
    if (!prev || prev.state === "lost" || prev.state === "disconnected") {
      this.log?.info({ node: id, url: ad.url }, "node up");
      this.emit("node-up", info);
    } else this.emit("node-changed", info);
  }

  /** Watch-driven reads are retried: a dropped one would leave that node's picture frozen. */
  private retrying(read: () => Promise<void>): void {
    void retryRead(read, () => this.zk.isAlive && !this.closed).then((ok) => {
      if (!ok && !this.closed && this.zk.isAlive) this.log?.warn("collector read failed repeatedly; waiting for the next change");
    });
  }
}

function insertSorted(ids: string[], id: string): void {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  ids.splice(lo, 0, id);
}
