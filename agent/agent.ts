import { mkdirSync, readFileSync, writeFileSync, renameSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import Koa from "koa";
import Router from "@koa/router";
import type { Got } from "got";
import { TokenTable } from "../src/common/auth.js";
import { parseListen, type Config } from "../src/common/config.js";
import { StaleEpochError } from "../src/common/errors.js";
import { createHttpClient } from "../src/common/http.js";
import { createLogger, type Logger } from "../src/common/logger.js";
import { parseBody, ReportReplySchema, type AgentAd, type AgentReport } from "../src/common/protocol.js";
import { readLeader, type LeaderInfo } from "../src/coord/election.js";
import { zpaths } from "../src/coord/paths.js";
import { ZkSession, type SessionCredentials } from "../src/coord/zk.js";
import { errorEnvelope } from "../src/http/edge.js";
import type { Driver } from "./driver/driver.js";
import { LxcDriver } from "./driver/lxc.js";
import { ProcessDriver } from "./driver/process.js";
import { agentRouter } from "./http/api.js";
import { LogRotator } from "./logs/rotate.js";
import { agentPage } from "./http/page.js";
import { AgentNaming } from "./naming/index.js";
import { defaultAgentId, machineLoad, measureCapacity } from "./machine.js";
import { PackageCache } from "./packages/cache.js";
import { PortAllocator } from "./tasks/ports.js";
import { TaskRunner } from "./tasks/runner.js";

/**
 * The Execute Server: one per machine. It advertises itself with an ephemeral
 * znode (liveness), runs what the primary dispatches, and reports every task
 * change at once plus a full report every interval (level-triggered).
 *
 * Restarting the agent kills no task: tasks run detached under the drivers'
 * wrappers, task records are persisted, and the ZooKeeper session is resumed
 * when the restart is quicker than the session timeout, so the manager does
 * not even see the node blink.
 */
/** How often the ad znode is rewritten when only the machine's load moved. */
const AD_LOAD_REFRESH_MS = 60_000;

export class AgentDaemon {
  readonly id: string;
  readonly url: string;
  private readonly log: Logger;
  private readonly dataDir: string;
  private readonly token: string;
  private readonly tokens: TokenTable;
  private readonly http: Got;
  private runner!: TaskRunner;
  private naming?: AgentNaming;
  private cache!: PackageCache;
  private drivers!: { lxc?: Driver; process: Driver };
  private server?: Server;
  private zk?: ZkSession;
  private leader?: LeaderInfo;
  private maxEpoch = 0;
  private attributes: Record<string, string> = {};
  private reportTimer?: NodeJS.Timeout;
  private reportSoon?: NodeJS.Timeout;
  private reporting = false;
  private reportAgain = false;
  private stopping = false;
  private rejoinTimer?: NodeJS.Timeout;
  private readonly startedAt = Date.now();
  private rotator?: LogRotator;

  constructor(private readonly config: Config) {
    this.id = config.agent.id ?? defaultAgentId();
    const { host, port } = parseListen(config.agent.listen);
    this.url = config.agent.advertiseUrl ?? `http://${host}:${port}`;
    this.dataDir = config.agent.dataDir;
    this.log = createLogger("agent", { agent: this.id });
    this.tokens = TokenTable.fromConfig(config, false, "agent");
    this.token = TokenTable.credentialOf(config, "agent");
    this.http = createHttpClient({ token: this.token, timeoutMs: 5000, retries: 1 });
  }

  private get epochFile(): string {
    return join(this.dataDir, "epoch");
  }

  private get sessionFile(): string {
    return join(this.dataDir, "zk-session.json");
  }

  /** Refuses anything from a primary older than one already seen (fencing). */
  admitEpoch(epoch: number): void {
    if (epoch < this.maxEpoch) throw new StaleEpochError(epoch, this.maxEpoch);
    if (epoch > this.maxEpoch) this.noteEpoch(epoch);
  }

  private noteEpoch(epoch: number): void {
    if (epoch <= this.maxEpoch) return;
    this.maxEpoch = epoch;
    writeFileSync(this.epochFile + ".tmp", String(epoch));
    renameSync(this.epochFile + ".tmp", this.epochFile);
  }

  async start(): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true });
    try {
      this.maxEpoch = Number(readFileSync(this.epochFile, "utf8")) || 0;
    } catch {
      this.maxEpoch = 0;
    }
    const a = this.config.agent;
    const proc = new ProcessDriver();
    let lxc: LxcDriver | undefined;
    if (a.driver !== "process") {
      const candidate = new LxcDriver({ rootfsDir: a.lxc.rootfs, lxcPath: a.lxc.lxcPath, defaultUser: { uid: a.lxc.uid, gid: a.lxc.gid } });
      const fp = await candidate.fingerprint();
      if (fp.available) lxc = candidate;
      else if (a.driver === "lxc") throw new Error(`lxc driver required by config but unavailable: ${fp.reason}`);
      else this.log.info({ reason: fp.reason }, "lxc unavailable; tasks run as plain processes");
      Object.assign(this.attributes, fp.attributes);
    }
    Object.assign(this.attributes, (await proc.fingerprint()).attributes, a.labels, { "driver.lxc": lxc ? "1" : "0", "node.id": this.id });
    this.drivers = lxc ? { lxc, process: proc } : { process: proc };
    this.cache = new PackageCache({
      cacheDir: a.packageCache.dir ?? join(this.dataDir, "packages"),
      maxBytes: a.packageCache.maxSize,
      sources: { ...(a.storageDir ? { storageDir: a.storageDir } : {}), managerUrls: () => (this.leader ? [this.leader.url] : []), token: this.token },
      logger: this.log,
    });
    const { host } = parseListen(a.listen);
    this.runner = new TaskRunner({
      dataDir: this.dataDir,
      nodeId: this.id,
      host: new URL(this.url).hostname,
      drivers: this.drivers,
      cache: this.cache,
      ports: new PortAllocator(a.portRange, host === "0.0.0.0" ? "0.0.0.0" : host),
      log: this.log,
    });
    this.rotator = new LogRotator({
      maxBytes: a.logs.maxSize,
      keep: a.logs.keep,
      intervalMs: 5000,
      onError: (path: string, e: unknown) => this.log.warn({ path, err: (e as Error).message }, "log rotation failed"),
    });
    this.runner.on("change", (r) => {
      // Logs are rotated by size while the task runs (copy-truncate; the wrapper appends).
      for (const stream of ["stdout", "stderr"]) {
        const path = join(r.dir, stream);
        if (r.state === "exited") this.rotator!.remove(path);
        else this.rotator!.add(path);
      }
      // A task change is news for the primary (submit→running latency), but every
      // report carries the whole table: with a thousand tasks changing at once,
      // waiting a little longer batches them instead of resending the table per change.
      this.scheduleReport(Math.min(100, 5 + Math.floor(this.runner.unrecordedCount / 10)));
    });
    this.rotator.start();
    await this.runner.recover();
    this.naming = new AgentNaming({
      tasks: this.runner,
      root: this.config.cluster.root,
      nodeId: this.id,
      host: new URL(this.url).hostname,
      dataDir: this.dataDir,
      log: this.log,
      // Stopping the attempt hands the restart to the manager's restart policy.
      onUnhealthy: (taskId, attempt) => void this.runner.stop(taskId, attempt, this.config.agent.stopGrace).catch(() => undefined),
      onHealthChange: () => this.scheduleReport(0),
    });
    await this.listen();
    await this.join();
    this.reportTimer = setInterval(() => {
      this.fullReportDue = true;
      this.scheduleReport(0);
      void this.runner.prune();
    }, a.reportInterval);
  }

  private async listen(): Promise<void> {
    const app = new Koa();
    app.use(errorEnvelope(this.log));
    const api = agentRouter(
      { runner: this.runner, admitEpoch: (e) => this.admitEpoch(e), status: () => this.status(), bodyLimit: 4 * 1024 * 1024 },
      this.tokens,
    );
    app.use(api.routes()).use(api.allowedMethods());
    const misc = new Router();
    misc.get("/healthz", (ctx) => {
      ctx.body = { ok: true, id: this.id };
    });
    misc.get("/", (ctx) => {
      ctx.type = "html";
      ctx.body = agentPage(this.status());
    });
    app.use(misc.routes());
    const { host, port } = parseListen(this.config.agent.listen);
    this.server = createServer(app.callback());
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(port, host, () => resolve());
    });
    this.log.info({ url: this.url }, "agent listening");
  }

  status() {
    return {
      id: this.id,
      url: this.url,
      startedAt: this.startedAt,
      epoch: this.maxEpoch,
      leader: this.leader ?? null,
      zookeeper: this.zk ? (this.zk.isConnected ? "connected" : this.zk.isAlive ? "disconnected" : "expired") : "connecting",
      drivers: { lxc: Boolean(this.drivers.lxc), process: true },
      attributes: this.attributes,
      ...measureCapacity(this.config.agent),
      load: machineLoad(this.dataDir),
      tasks: this.runner.report(),
      packages: this.cache.stats(),
    };
  }

  private async ad(): Promise<AgentAd> {
    const { capacity, allocatable } = measureCapacity(this.config.agent);
    return {
      id: this.id,
      url: this.url,
      host: new URL(this.url).hostname,
      capacity,
      allocatable,
      attributes: this.attributes,
      portRange: this.config.agent.portRange,
      drivers: { lxc: Boolean(this.drivers.lxc), process: true },
      cachedPackages: (await this.cache.list()).map(String),
      load: machineLoad(this.dataDir),
      startedAt: this.startedAt,
    };
  }

  private loadCredentials(): SessionCredentials | undefined {
    try {
      return JSON.parse(readFileSync(this.sessionFile, "utf8")) as SessionCredentials;
    } catch {
      return undefined;
    }
  }

  private async connect(): Promise<ZkSession> {
    const c = this.config.cluster;
    const resume = this.loadCredentials();
    if (resume) {
      try {
        const zk = await ZkSession.connect({ connect: c.zookeeper, sessionTimeoutMs: c.sessionTimeout, resume, logger: this.log, connectTimeoutMs: c.sessionTimeout + 2000 });
        this.log.info("resumed the previous ZooKeeper session");
        return zk;
      } catch {
        this.log.info("previous ZooKeeper session is gone; starting a new one");
      }
    }
    return ZkSession.connect({ connect: c.zookeeper, sessionTimeoutMs: c.sessionTimeout, logger: this.log });
  }

  private async join(): Promise<void> {
    if (this.stopping) return;
    let zk: ZkSession;
    try {
      zk = await this.connect();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "cannot reach ZooKeeper; retrying");
      this.scheduleRejoin(1000);
      return;
    }
    this.zk = zk;
    writeFileSync(this.sessionFile, JSON.stringify(zk.credentials), { mode: 0o600 });
    zk.once("expired", () => {
      this.log.warn("ZooKeeper session expired; re-registering with a new session");
      if (this.zk === zk) this.zk = undefined;
      this.scheduleRejoin(100);
    });
    zk.on("reconnected", () => this.scheduleReport(0));
    const p = zpaths(this.config.cluster.root);
    try {
      await zk.ensurePath(p.agents);
      const data = JSON.stringify(await this.ad());
      const path = p.agent(this.id);
      const existing = await zk.exists(path);
      if (existing && existing.ephemeralOwner !== undefined && !sameSession(existing.ephemeralOwner, zk.sessionId)) {
        // A node left by our previous incarnation's (dying) session: take it over now.
        await zk.delete(path);
      }
      if (!(await zk.createIfAbsent(path, data, "ephemeral"))) await zk.set(path, data);
      await this.watchEpoch(zk);
      await this.watchLeader(zk);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "registration failed; retrying");
      zk.close();
      if (this.zk === zk) this.zk = undefined;
      this.scheduleRejoin(1000);
      return;
    }
    this.log.info({ path: p.agent(this.id) }, "registered");
    this.naming?.attach(zk);
    this.scheduleReport(0);
  }

  private scheduleRejoin(ms: number): void {
    if (this.stopping || this.rejoinTimer) return;
    this.rejoinTimer = setTimeout(() => {
      this.rejoinTimer = undefined;
      void this.join();
    }, ms);
  }

  private async watchEpoch(zk: ZkSession): Promise<void> {
    if (!zk.isAlive || this.stopping) return;
    const r = await zk.getIfExists(zpaths(this.config.cluster.root).epoch, () => void this.watchEpoch(zk).catch(() => undefined));
    if (r) this.noteEpoch(Number(r.data.toString()) || 0);
  }

  private async watchLeader(zk: ZkSession): Promise<void> {
    if (!zk.isAlive || this.stopping) return;
    const info = await readLeader(zk, this.config.cluster.root, () => void this.watchLeader(zk).catch(() => undefined));
    const changed = info?.epoch !== this.leader?.epoch;
    this.leader = info;
    if (info) this.noteEpoch(info.epoch);
    if (changed && info) {
      this.log.info({ leader: info.id, epoch: info.epoch }, "primary changed; reporting");
      this.scheduleReport(0);
    }
  }

  /**
   * Reports on task changes carry the task list only; the periodic one also
   * refreshes usage from the cgroups and the machine ad in ZooKeeper. Doing
   * those on every change costs a ZooKeeper write and a cgroup read per running
   * task each time, which delayed reports by seconds with 1,000 tasks.
   */
  private fullReportDue = true;
  private lastAd?: AgentAd;
  /** The ad last written to the znode (without its load) and when. */
  private adWritten = { facts: "", at: 0 };

  /**
   * Rewrites the ad znode when what the scheduler reads from it changed, and
   * for the load figure (shown by backups' pages) only every AD_LOAD_REFRESH_MS:
   * every manager watches every ad, so a rewrite per report interval cost each
   * manager a read and a parse per agent per interval (1,000 a second at
   * 10,000 machines) and ZooKeeper a third of its write capacity. The primary
   * gets the load in every report anyway.
   */
  private async refreshAd(zk: ZkSession, ad: AgentAd): Promise<void> {
    const facts = JSON.stringify({ ...ad, load: undefined });
    if (facts === this.adWritten.facts && Date.now() - this.adWritten.at < AD_LOAD_REFRESH_MS) return;
    await zk
      .set(zpaths(this.config.cluster.root).agent(this.id), JSON.stringify(ad))
      .then(() => {
        this.adWritten = { facts, at: Date.now() };
      })
      .catch(() => undefined);
  }

  private scheduleReport(delayMs: number): void {
    if (this.stopping) return;
    if (this.reportSoon) return;
    this.reportSoon = setTimeout(() => {
      this.reportSoon = undefined;
      void this.report();
    }, delayMs);
  }

  /** Sends the full task list to the primary and refreshes the znode's machine state. */
  private async report(): Promise<void> {
    if (this.reporting) {
      this.reportAgain = true;
      return;
    }
    this.reporting = true;
    try {
      const zk = this.zk;
      if (this.fullReportDue) {
        this.fullReportDue = false;
        await this.runner.refreshUsage();
        this.lastAd = await this.ad();
        if (zk?.isConnected) await this.refreshAd(zk, this.lastAd);
      }
      const leader = this.leader;
      if (!leader) return;
      const load = (this.lastAd ??= await this.ad()).load!;
      const cachedPackages = (await this.cache.list()).map(String);
      const body: AgentReport = { agentId: this.id, tasks: this.withHealth(this.runner.report({ forPrimary: true })), cachedPackages, load };
      const reply = await this.http.post(`${leader.url}/v1/agents/${encodeURIComponent(this.id)}/report`, { json: body, retry: { limit: 1, methods: ["POST"] } }).json();
      this.runner.markRecorded(parseBody(ReportReplySchema, reply).recorded);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "report failed; will retry");
      setTimeout(() => this.scheduleReport(0), 1000).unref();
    } finally {
      this.reporting = false;
      if (this.reportAgain) {
        this.reportAgain = false;
        this.scheduleReport(0);
      }
    }
  }

  private withHealth(tasks: AgentReport["tasks"]): AgentReport["tasks"] {
    return tasks.map((t) => {
      const healthy = t.state === "running" ? this.naming?.healthy(t.taskId, t.attempt) : undefined;
      return healthy === undefined ? t : { ...t, healthy };
    });
  }

  /**
   * Stops the daemon, not its tasks (they run on detached). `deregister`
   * removes the znode at once (a clean shutdown), instead of letting the
   * session time out.
   */
  async stop(opts: { deregister?: boolean; stopTasks?: boolean } = {}): Promise<void> {
    this.stopping = true;
    this.runner.close();
    if (opts.stopTasks) {
      await Promise.all(this.runner.all().map((r) => this.runner.stop(r.dispatch.taskId, r.dispatch.attempt, this.config.agent.stopGrace).catch(() => false)));
    }
    await this.naming?.stop({ deregister: Boolean(opts.deregister) });
    for (const t of [this.reportTimer, this.reportSoon, this.rejoinTimer]) if (t) clearTimeout(t);
    this.rotator?.stop();
    // Without deregister the session is left open on purpose: closing it would delete the
    // agent's znode at once, and the primary would move every task of a node that is only
    // restarting. The next incarnation resumes the session (sessionFile); if none does
    // within the session timeout, ZooKeeper expires it and the node is lost as after a crash.
    // The open native session keeps the process alive: the caller exits.
    if (this.zk && opts.deregister) {
      await this.zk.delete(zpaths(this.config.cluster.root).agent(this.id)).catch(() => undefined);
      this.zk.close();
    }
    await this.cache.close();
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** Both are hex strings without 0x (as the binding gives them); compare them as numbers. */
function sameSession(owner: string, sessionId: string): boolean {
  const norm = (h: string) => h.toLowerCase().replace(/^0x/, "").replace(/^0+/, "");
  return norm(owner) === norm(sessionId);
}
