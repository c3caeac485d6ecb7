import { Agent as HttpAgent, request } from "node:http";
import { TokenTable } from "../../src/common/auth.js";
import type { Logger } from "../../src/common/logger.js";
import { parallel } from "../../src/common/parallel.js";
import { parseBody, ReportReplySchema, type AgentAd, type AgentReport } from "../../src/common/protocol.js";
import type { Resources } from "../../src/common/types.js";
import { readLeader, type LeaderInfo } from "../../src/coord/election.js";
import { zpaths, type ZPaths } from "../../src/coord/paths.js";
import { ZkSession } from "../../src/coord/zk.js";
import type { ZkAuth } from "../../src/coord/zk/acl.js";
import { SimAgent } from "./sim-agent.js";
import { SimServer } from "./sim-server.js";

/**
 * A simulated cell of many machines in ONE process, for exercising the
 * managers at scale (issue 8: 10,000 machines for P1 and P7).
 *
 * - ONE ZooKeeper session owns every machine's ephemeral `/agents/<id>` znode,
 *   holding a valid AgentAd; closing the session (or its expiry) takes them
 *   all away at once, as machines whose sessions end.
 * - ONE HTTP server answers for all of them (see SimServer): agent `<id>` is
 *   advertised at `http://HOST:PORT/sim/<id>`.
 * - Each machine reports its full task list to the current primary (the
 *   leader znode is watched) every `reportIntervalMs`, at its own phase of the
 *   interval so 10,000 machines do not report at once, plus shortly after any
 *   change of its task table and at once when the primary changes: the real
 *   agent's three triggers. Like the real agent, a periodic report also
 *   rewrites the machine's znode with fresh load once a minute (`adRefreshMs`;
 *   a simulated machine's ad changes in nothing else).
 * - Reports go out through at most `reportConcurrency` connections; a machine
 *   already waiting to report is not queued twice, so a slow primary meets
 *   one pending report per machine, never a pile.
 */

export interface SimCellOptions {
  zookeeper: string;
  /** The cell's ZooKeeper credential, when its znodes have ACLs. */
  auth?: ZkAuth;
  /** Cluster root in ZooKeeper (default /torca). */
  root?: string;
  /** The cluster token: machines send it with reports (and managers with dispatches, unless managerToken is given). */
  token: string;
  /** The managers' own token (cluster.managerTokenFile), accepted for dispatches and stops. */
  managerToken?: string;
  agents: number;
  /** Machine ids are `${idPrefix}${index}`, index from 0, zero-padded to 5 digits. */
  idPrefix?: string;
  host?: string;
  /** HTTP port (default: a free one). */
  port?: number;
  sessionTimeoutMs?: number;
  reportIntervalMs?: number;
  reportConcurrency?: number;
  /** Run time of batch tasks (ms); a task's env SIM_RUN_MS overrides it. */
  batchRunMs?: number;
  retainExitedMs?: number;
  capacity?: Resources;
  /** Attributes of machine `index` (the defaults vary zone, rack, kernel, os so constraints have something to match). */
  attributes?: (index: number) => Record<string, string>;
  drivers?: { lxc: boolean; process: boolean };
  portRange?: [number, number];
  /** Rewrite the machine's znode (its load) on a periodic report at most this often, as the real agent does (default 60 s; 0: never). */
  adRefreshMs?: number;
  logger?: Logger;
}

export interface SimCellStats {
  agents: number;
  runningTasks: number;
  dispatches: number;
  duplicateDispatches: number;
  stops: number;
  reportsSent: number;
  reportsFailed: number;
  reportsQueued: number;
}

const GiB = 1024 ** 3;
const WHEEL_SLOT_MS = 100;
const REGISTER_PARALLELISM = 200;
const REPORT_TIMEOUT_MS = 10_000;
const REPORT_RETRY_MS = 1000;

export function defaultSimAttributes(index: number): Record<string, string> {
  return {
    os: index % 50 === 49 ? "windows" : "linux",
    zone: `z${index % 8}`,
    rack: `r${index % 97}`,
    kernel: index % 3 === 0 ? "5.15.0" : "6.8.0",
    simulated: "1",
  };
}

export class SimCell {
  readonly agents = new Map<string, SimAgent>();
  private readonly order: SimAgent[] = [];
  private readonly o: Required<Omit<SimCellOptions, "logger" | "port">> & { port: number };
  private readonly log?: Logger;
  private readonly p: ZPaths;
  private readonly server: SimServer;
  private readonly httpAgent: HttpAgent;
  private zk?: ZkSession;
  private leader?: LeaderInfo;
  private zkEpoch = 0;
  private closed = false;
  private url = "";

  /** Each machine's phase within the report interval, sorted: the wheel's spokes. */
  private phases: { at: number; agent: SimAgent }[] = [];
  private wheelTimer?: NodeJS.Timeout;
  private wheelStart = 0;
  /** Invariant: the first spoke after `wheelLast` (ms since the wheel started, modulo the interval). */
  private wheelPos = 0;
  private wheelLast = 0;

  private readonly queue = new Set<SimAgent>();
  /** Machines whose periodic report is due: it may also refresh their znode. */
  private readonly adDue = new Set<SimAgent>();
  private readonly adWrittenAt = new Map<SimAgent, number>();
  /** Machines with a report on a change pending (one timer each, as each real agent has). */
  private readonly changeTimers = new Map<SimAgent, NodeJS.Timeout>();
  private readonly retry = new Set<SimAgent>();
  private retryTimer?: NodeJS.Timeout;
  private inFlight = 0;
  private readonly rejoinTimers = new Set<NodeJS.Timeout>();

  private readonly counters = { dispatches: 0, duplicateDispatches: 0, stops: 0, reportsSent: 0, reportsFailed: 0 };

  constructor(opts: SimCellOptions) {
    this.o = {
      root: "/torca",
      idPrefix: "sim-",
      host: "127.0.0.1",
      port: 0,
      sessionTimeoutMs: 4000,
      reportIntervalMs: 5000,
      reportConcurrency: 32,
      batchRunMs: 1000,
      retainExitedMs: 300_000,
      capacity: { cpu: 8, memory: 32 * GiB, disk: 500 * GiB },
      attributes: defaultSimAttributes,
      drivers: { lxc: true, process: true },
      portRange: [20000, 29999],
      adRefreshMs: 60_000,
      ...opts,
    } as SimCell["o"];
    if (opts.logger) this.log = opts.logger;
    this.p = zpaths(this.o.root);
    this.httpAgent = new HttpAgent({ keepAlive: true, maxSockets: this.o.reportConcurrency });
    this.server = new SimServer({
      agent: (id) => this.agents.get(id),
      tokens: new TokenTable(this.o.token, this.o.managerToken ? [{ name: "managers", role: "manager", token: this.o.managerToken }] : []),
      onDispatch: (created) => {
        if (created) this.counters.dispatches++;
        else this.counters.duplicateDispatches++;
      },
      onStop: () => this.counters.stops++,
    });
  }

  /** Base URL of machine `id`. */
  urlOf(id: string): string {
    return `${this.url}/sim/${encodeURIComponent(id)}`;
  }

  idOf(index: number): string {
    return `${this.o.idPrefix}${String(index).padStart(5, "0")}`;
  }

  async start(): Promise<void> {
    const port = await this.server.listen(this.o.host, this.o.port);
    this.url = `http://${this.o.host}:${port}`;
    const startedAt = Date.now();
    for (let i = 0; i < this.o.agents; i++) {
      const id = this.idOf(i);
      const ad: AgentAd = {
        id,
        url: this.urlOf(id),
        host: this.o.host,
        capacity: { ...this.o.capacity },
        allocatable: { ...this.o.capacity },
        attributes: { ...this.o.attributes(i), "node.id": id, "driver.lxc": this.o.drivers.lxc ? "1" : "0" },
        portRange: this.o.portRange,
        drivers: this.o.drivers,
        cachedPackages: [],
        startedAt,
      };
      const agent = new SimAgent(ad, { batchRunMs: this.o.batchRunMs, retainExitedMs: this.o.retainExitedMs }, (a) => this.onTaskChange(a));
      this.agents.set(id, agent);
      this.order.push(agent);
    }
    await this.join();
    this.startWheel();
  }

  /** Registers every machine on a fresh session; on expiry, does it again (as agents re-register). */
  private async join(): Promise<void> {
    const zk = await ZkSession.connect({ connect: this.o.zookeeper, sessionTimeoutMs: this.o.sessionTimeoutMs, ...(this.o.auth ? { auth: this.o.auth } : {}), ...(this.log ? { logger: this.log } : {}) });
    if (this.closed) {
      zk.close();
      return;
    }
    this.zk = zk;
    zk.once("expired", () => {
      this.log?.warn("simulated cell's ZooKeeper session expired; registering every machine again");
      if (this.zk === zk) this.zk = undefined;
      this.scheduleRejoin(100);
    });
    zk.on("reconnected", () => this.enqueueAll());
    await zk.ensurePath(this.p.agents);
    await parallel(this.order, REGISTER_PARALLELISM, (a) => this.register(zk, a));
    await this.watchEpoch(zk);
    await this.watchLeader(zk);
    this.log?.info({ agents: this.order.length }, "simulated machines registered");
  }

  private scheduleRejoin(ms: number): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.rejoinTimers.delete(t);
      this.join().catch((e: unknown) => {
        this.log?.warn({ err: (e as Error).message }, "simulated cell could not register; retrying");
        this.scheduleRejoin(1000);
      });
    }, ms);
    this.rejoinTimers.add(t);
  }

  private async register(zk: ZkSession, a: SimAgent): Promise<void> {
    const path = this.p.agent(a.id);
    const data = JSON.stringify(a.ad);
    if (await zk.createIfAbsent(path, data, "ephemeral")) return;
    // Left by an earlier (dying) session of ours: take it over, as the real agent does.
    await zk.delete(path);
    await zk.create(path, data, "ephemeral");
  }

  private async watchEpoch(zk: ZkSession): Promise<void> {
    if (this.closed || !zk.isAlive) return;
    const r = await zk.getIfExists(this.p.epoch, () => void this.watchEpoch(zk).catch(() => undefined));
    if (r) this.noteEpoch(Number(r.data.toString()) || 0);
  }

  private async watchLeader(zk: ZkSession): Promise<void> {
    if (this.closed || !zk.isAlive) return;
    const info = await readLeader(zk, this.o.root, () => void this.watchLeader(zk).catch(() => undefined));
    const changed = info?.epoch !== this.leader?.epoch;
    this.leader = info;
    if (info) this.noteEpoch(info.epoch);
    if (changed && info) {
      this.log?.info({ leader: info.id, epoch: info.epoch }, "primary changed; every simulated machine reports");
      this.enqueueAll();
    }
  }

  private noteEpoch(epoch: number): void {
    if (epoch <= this.zkEpoch) return;
    this.zkEpoch = epoch;
    for (const a of this.order) a.noteEpoch(epoch);
  }

  // ------------------------------------------------------------------ reports

  private startWheel(): void {
    const interval = this.o.reportIntervalMs;
    this.phases = this.order.map((agent) => ({ at: Math.random() * interval, agent })).sort((x, y) => x.at - y.at);
    this.wheelStart = Date.now();
    this.wheelPos = 0;
    this.wheelLast = 0;
    this.wheelTimer = setInterval(() => this.turnWheel(), WHEEL_SLOT_MS);
  }

  /** Queues every machine whose phase has come round since the last turn. */
  private turnWheel(): void {
    const interval = this.o.reportIntervalMs;
    const elapsed = Date.now() - this.wheelStart;
    const to = elapsed % interval;
    if (elapsed - this.wheelLast >= interval) {
      // A late turn (a busy event loop) skipped a whole round: everyone is due.
      for (const a of this.order) this.periodic(a);
      this.wheelPos = this.phases.findIndex((ph) => ph.at > to);
      if (this.wheelPos < 0) this.wheelPos = this.phases.length;
    } else {
      if (to < this.wheelLast % interval) {
        while (this.wheelPos < this.phases.length) this.periodic(this.phases[this.wheelPos++]!.agent);
        this.wheelPos = 0;
      }
      while (this.wheelPos < this.phases.length && this.phases[this.wheelPos]!.at <= to) this.periodic(this.phases[this.wheelPos++]!.agent);
    }
    this.wheelLast = elapsed;
  }

  /** The real agent's batching of changes: 5 ms, longer the more its report carries (at most 100 ms). */
  private onTaskChange(a: SimAgent): void {
    if (this.closed || this.changeTimers.has(a)) return;
    const delay = Math.min(100, 5 + Math.floor(a.unrecordedCount / 10));
    this.changeTimers.set(
      a,
      setTimeout(() => {
        this.changeTimers.delete(a);
        this.enqueue(a);
      }, delay),
    );
  }

  private periodic(a: SimAgent): void {
    this.adDue.add(a);
    this.enqueue(a);
  }

  private enqueueAll(): void {
    for (const a of this.order) this.enqueue(a);
  }

  private enqueue(a: SimAgent): void {
    if (this.closed) return;
    this.queue.add(a);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.o.reportConcurrency && this.queue.size > 0) {
      const a = this.queue.values().next().value as SimAgent;
      this.queue.delete(a);
      this.inFlight++;
      void this.report(a)
        .then(
          () => this.counters.reportsSent++,
          (e: unknown) => {
            this.counters.reportsFailed++;
            this.log?.debug({ agent: a.id, err: (e as Error).message }, "simulated report failed; retrying");
            this.retryLater(a);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }

  private retryLater(a: SimAgent): void {
    if (this.closed) return;
    this.retry.add(a);
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const x of this.retry) this.enqueue(x);
      this.retry.clear();
    }, REPORT_RETRY_MS);
  }

  /** One machine's report: on the periodic one its znode is refreshed with load first (as the real agent does), then the full task list goes to the primary. */
  private async report(a: SimAgent): Promise<void> {
    const load = a.load();
    const zk = this.zk;
    const refresh = this.adDue.delete(a) && this.o.adRefreshMs > 0 && Date.now() - (this.adWrittenAt.get(a) ?? 0) >= this.o.adRefreshMs;
    if (refresh && zk?.isConnected) {
      await zk
        .set(this.p.agent(a.id), JSON.stringify({ ...a.ad, load }))
        .then(() => void this.adWrittenAt.set(a, Date.now()))
        .catch(() => undefined);
    }
    const leader = this.leader;
    // No primary: the next leader change makes everyone report.
    if (!leader) return;
    const body: AgentReport = { agentId: a.id, tasks: a.report({ forPrimary: true }), cachedPackages: a.ad.cachedPackages, load };
    const reply = await this.post(`${leader.url}/v1/agents/${encodeURIComponent(a.id)}/report`, JSON.stringify(body), 1);
    a.markRecorded(parseBody(ReportReplySchema, JSON.parse(reply)).recorded);
  }

  /** POSTs JSON; resolves with the 2xx response's body. */
  private post(url: string, body: string, redirects: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const u = new URL(url);
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: "POST",
          agent: this.httpAgent,
          timeout: REPORT_TIMEOUT_MS,
          headers: { authorization: `Bearer ${this.o.token}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            const location = res.headers.location;
            // A backup answers 307 with the primary's address, as the real agent's client follows.
            if (status === 307 && location && redirects > 0) this.post(location, body, redirects - 1).then(resolve, reject);
            else if (status >= 200 && status < 300) resolve(Buffer.concat(chunks).toString("utf8"));
            else reject(new Error(`report to ${u.host}: HTTP ${status}`));
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`report to ${u.host} timed out`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  // ------------------------------------------------------------------ views

  stats(): SimCellStats {
    let running = 0;
    for (const a of this.order) running += a.running().size;
    return { agents: this.order.length, runningTasks: running, ...this.counters, reportsQueued: this.queue.size };
  }

  /** Every task running anywhere in the simulated cell: task id → { node, attempt }. */
  runningTasks(): Map<string, { nodeId: string; attempt: number }> {
    const out = new Map<string, { nodeId: string; attempt: number }>();
    for (const a of this.order) for (const [taskId, attempt] of a.running()) out.set(taskId, { nodeId: a.id, attempt });
    return out;
  }

  get currentLeader(): LeaderInfo | undefined {
    return this.leader;
  }

  /** Stops reporting and answering; closing the session removes every machine's znode at once. */
  async stop(): Promise<void> {
    this.closed = true;
    for (const t of [this.wheelTimer, this.retryTimer, ...this.rejoinTimers, ...this.changeTimers.values()]) if (t) clearTimeout(t);
    this.rejoinTimers.clear();
    this.changeTimers.clear();
    this.queue.clear();
    this.adDue.clear();
    for (const a of this.order) a.close();
    this.zk?.close();
    this.zk = undefined;
    this.httpAgent.destroy();
    await this.server.close();
  }
}
