import { mkdirSync } from "node:fs";
import type { Server } from "node:http";
import { join } from "node:path";
import Koa from "koa";
import Router from "@koa/router";
import type { Got } from "got";
import { TokenTable } from "../src/common/auth.js";
import { parseListen, type Config } from "../src/common/config.js";
import { createHttpClient, sourceAddressOf } from "../src/common/http.js";
import { createLogger, type Logger } from "../src/common/logger.js";
import { zookeeperAuthOf } from "../src/coord/credential.js";
import type { AgentAd } from "../src/common/protocol.js";
import { errorEnvelope } from "../src/http/edge.js";
import { cellCaOf, daemonUrl, listenDaemon, servingTls, type ServingTls } from "../src/http/tls.js";
import { requireRole } from "../src/http/auth.js";
import { AgentMetrics } from "../src/metrics/agent.js";
import { serveUpgrades } from "../src/http/upgrade.js";
import { execRoute } from "./http/exec.js";
import type { Driver } from "./driver/driver.js";
import { isCutOff, tasksToStopWhenCutOff } from "./cut-off.js";
import { AgentDevices } from "./devices/devices.js";
import { detectDrivers } from "./drivers.js";
import { EpochFence } from "./epoch-fence.js";
import { agentRouter } from "./http/api.js";
import { BlobServer } from "./http/blobs.js";
import { LogRotator } from "./logs/rotate.js";
import { agentPage } from "./http/page.js";
import { AgentNaming } from "./naming/index.js";
import { defaultAgentId, machineLoad, measureCapacity } from "./machine.js";
import { PackageCache } from "./packages/cache.js";
import { managerPeerDirectory } from "./packages/peers.js";
import { AgentRegistration } from "./registration.js";
import { Reporter } from "./reporting.js";
import { PortAllocator } from "./tasks/ports.js";
import { TaskUsers } from "./tasks/task-users.js";
import { DrainingStops } from "./tasks/drain.js";
import { TaskRunner } from "./tasks/runner.js";
import { machineCpuNs, UsageHistory } from "./usage-history.js";
import { CgroupV1 } from "./driver/cgroup.js";
import { ReclaimEnforcer } from "./reclaim/enforcer.js";

const CUT_OFF_CHECK_MS = 1000;

/**
 * The Execute Server: one per machine. It advertises itself with an ephemeral
 * znode (liveness, registration.ts), runs what the primary dispatches
 * (tasks/runner.ts), and reports every task change at once plus a full report
 * every interval (reporting.ts). This module wires them and serves HTTP.
 *
 * Restarting the agent kills no task: tasks run detached under the drivers'
 * wrappers, task records are persisted, and the ZooKeeper session is resumed
 * when the restart is quicker than the session timeout, so the manager does
 * not even see the node blink.
 */

export class AgentDaemon {
  readonly id: string;
  readonly url: string;
  private readonly log: Logger;
  private readonly dataDir: string;
  private readonly token: string;
  private readonly tokens: TokenTable;
  private readonly http: Got;
  private readonly tls: ServingTls;
  /** What reports and blob fetches verify managers against. */
  private readonly cellCa: Buffer | undefined;
  private readonly fence: EpochFence;
  private runner!: TaskRunner;
  private naming?: AgentNaming;
  private drains!: DrainingStops;
  private cache!: PackageCache;
  private blobServer?: BlobServer;
  private drivers!: { lxc?: Driver; process: Driver };
  private registration!: AgentRegistration;
  private reporter!: Reporter;
  private usage!: UsageHistory;
  /** Throttles and evicts reclaimed tasks for the others (docs/reclamation.md). */
  private reclaim!: ReclaimEnforcer;
  private server?: Server;
  private attributes: Record<string, string> = {};
  private devices!: AgentDevices;
  private readonly startedAt = Date.now();
  private rotator?: LogRotator;
  /** Last contact with ZooKeeper and with a manager: cut off from both past the grace, tasks stop (checkCutOff). */
  private readonly contacts = { zookeeperAt: Date.now(), managerAt: Date.now() };
  /** The primary's disconnect grace, as its report replies say (the config's until one does). */
  private disconnectGraceMs: number;
  private cutOff = false;
  private cutOffTimer?: NodeJS.Timeout;
  /** Read when scraped, so only once the runner and cache exist (GET /metrics is served after both). */
  readonly metrics = new AgentMetrics({ tasks: () => this.runner.report(), packages: () => this.cache.stats() });

  constructor(private readonly config: Config) {
    this.id = config.agent.id ?? defaultAgentId();
    // Refuses plain HTTP beyond loopback before anything starts.
    this.tls = servingTls(config, "agent");
    this.cellCa = cellCaOf(config.cluster);
    this.url = daemonUrl(config.agent.listen, config.agent.advertiseUrl, this.tls);
    this.dataDir = config.agent.dataDir;
    this.log = createLogger("agent", { agent: this.id });
    this.tokens = TokenTable.fromConfig(config, false, "agent");
    this.token = TokenTable.credentialOf(config, "agent");
    // Reports come from the agent's own address (a partition rule on it hits them).
    this.http = createHttpClient({ token: this.token, timeoutMs: 5000, retries: 1, ca: this.cellCa, localAddress: sourceAddressOf(parseListen(config.agent.listen).host) });
    this.fence = new EpochFence(join(this.dataDir, "epoch"));
    this.disconnectGraceMs = config.manager.disconnect.grace;
  }

  async start(): Promise<void> {
    // The agent's own files are its alone (tasks run under other uids); what tasks need is opened up explicitly.
    process.umask(0o077);
    mkdirSync(this.dataDir, { recursive: true });
    this.fence.load();
    const a = this.config.agent;
    this.usage = new UsageHistory(a.reportInterval);
    const found = await detectDrivers(a, this.id, this.log);
    this.drivers = found.drivers;
    Object.assign(this.attributes, found.attributes);
    this.devices = await AgentDevices.detect(a.devices);
    const managerUrls = (): string[] => (this.registration.leader ? [this.registration.leader.url] : []);
    const peers = a.packagePeers;
    this.cache = new PackageCache({
      cacheDir: a.packageCache.dir ?? join(this.dataDir, "packages"),
      maxBytes: a.packageCache.maxSize,
      sources: {
        ...(a.storageDir ? { storageDir: a.storageDir } : {}),
        managerUrls,
        token: this.token,
        ...(this.cellCa ? { ca: this.cellCa } : {}),
        ...(peers.enabled ? { peers: { directory: managerPeerDirectory(managerUrls, this.http), self: { id: this.id, attributes: this.attributes }, tries: peers.tries, waitMs: peers.wait } } : {}),
      },
      keepBlobs: peers.enabled,
      onPeerCorrupt: (c) => this.reporter.notePeerCorruption(c),
      onChange: () => this.reporter.adChanged(),
      logger: this.log,
    });
    if (peers.enabled) {
      const cache = this.cache;
      this.blobServer = new BlobServer({ open: (d) => cache.openBlob(d), ratePerSecond: peers.rate, burst: peers.burst, maxTransfers: peers.maxTransfers });
    }
    const { host } = parseListen(a.listen);
    this.runner = new TaskRunner({
      dataDir: this.dataDir,
      nodeId: this.id,
      host: new URL(this.url).hostname,
      drivers: this.drivers,
      cache: this.cache,
      ports: new PortAllocator(a.portRange, host === "0.0.0.0" ? "0.0.0.0" : host),
      users: new TaskUsers({ ...a.taskUsers, allowRootTasks: a.allowRootTasks, nodeId: this.id }),
      devices: this.devices,
      log: this.log,
    });
    this.drains = new DrainingStops(this.runner, () => this.naming, this.log);
    this.reclaim = new ReclaimEnforcer({
      runner: this.runner,
      usage: this.usage,
      cgroup: new CgroupV1(),
      allocatable: () => measureCapacity(a).allocatable,
      margin: a.reclamation.margin,
      evictAfterMs: a.reclamation.evictAfter,
      stopGraceMs: a.stopGrace,
      log: this.log.child({ part: "reclaim" }),
    });
    const zkAuth = zookeeperAuthOf(this.config.cluster);
    this.registration = new AgentRegistration({
      id: this.id,
      zookeeper: this.config.cluster.zookeeper,
      root: this.config.cluster.root,
      sessionTimeoutMs: this.config.cluster.sessionTimeout,
      ...(zkAuth ? { auth: zkAuth } : {}),
      sessionFile: join(this.dataDir, "zk-session.json"),
      fence: this.fence,
      log: this.log,
      ad: () => this.ad(),
      onRegistered: (zk) => {
        this.naming?.attach(zk);
        this.reporter.schedule(0);
      },
      onReconnected: () => this.reporter.schedule(0),
      onLeaderChanged: () => this.reporter.schedule(0),
    });
    this.reporter = new Reporter({
      id: this.id,
      http: this.http,
      runner: this.runner,
      cache: this.cache,
      naming: () => this.naming,
      log: this.log,
      leader: () => this.registration.leader,
      ad: () => this.ad(),
      refreshAd: (ad) => this.registration.refreshAd(ad),
      onUsageRead: () => this.sampleUsage(),
      onReply: (reply) => {
        this.contacts.managerAt = Date.now();
        if (reply.disconnectGraceMs !== undefined) this.disconnectGraceMs = reply.disconnectGraceMs;
      },
    });
    this.rotator = new LogRotator({
      maxBytes: a.logs.maxSize,
      keep: a.logs.keep,
      intervalMs: 5000,
      onError: (path: string, e: unknown) => this.log.warn({ path, err: e }, "log rotation failed"),
    });
    this.runner.on("change", (r) => {
      this.metrics.taskChanged(r);
      // Logs are rotated by size while the task runs (copy-truncate; the wrapper appends).
      for (const stream of ["stdout", "stderr"]) {
        const path = join(r.dir, stream);
        if (r.state === "exited") this.rotator!.remove(path);
        else this.rotator!.add(path);
      }
      // A task change is news for the primary (submit→running latency), but every
      // report carries the whole table: with a thousand tasks changing at once,
      // waiting a little longer batches them instead of resending the table per change.
      this.reporter.schedule(Math.min(100, 5 + Math.floor(this.runner.unrecordedCount / 10)));
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
      onHealthChange: () => this.reporter.schedule(0),
    });
    await this.listen();
    await this.registration.start();
    this.reporter.start(a.reportInterval, () => void this.runner.prune());
    this.cutOffTimer = setInterval(() => this.checkCutOff(), CUT_OFF_CHECK_MS);
  }

  /**
   * Cut off from ZooKeeper and every manager for the disconnect grace less a
   * margin: the primary may migrate the tasks, so they stop here first
   * (agent/cut-off.ts); jobs with `disconnect.keepRunning` are left running.
   */
  private checkCutOff(): void {
    const now = Date.now();
    // Known alive also while disconnected when a server vouches for the session or no quorum could expire it
    // (the whole ZooKeeper down): then no primary can start the grace, and the tasks stay.
    const aliveAt = this.registration.zookeeperAliveAt(now);
    if (aliveAt !== undefined) this.contacts.zookeeperAt = Math.max(this.contacts.zookeeperAt, aliveAt);
    if (!isCutOff(this.contacts, this.disconnectGraceMs, now)) {
      this.cutOff = false;
      return;
    }
    const live = this.runner.all().map((r) => ({ r, live: r.state !== "exited", stopping: r.stopRequested === true, keepRunning: r.dispatch.spec.disconnect?.keepRunning === true }));
    const stops = tasksToStopWhenCutOff(live);
    if (!this.cutOff) this.log.warn({ graceMs: this.disconnectGraceMs, stopping: stops.length }, "cut off from ZooKeeper and every manager; stopping tasks before the primary migrates them");
    this.cutOff = true;
    for (const { r } of stops) void this.runner.stop(r.dispatch.taskId, r.dispatch.attempt, this.config.agent.stopGrace).catch((e: unknown) => this.log.warn({ task: r.dispatch.taskId, err: e }, "stopping a cut-off task failed"));
  }

  private async listen(): Promise<void> {
    const app = new Koa();
    // Outermost: the duration covers the whole request and the code is the one the error edge gave.
    app.use(this.metrics.http);
    app.use(errorEnvelope(this.log));
    const api = agentRouter(
      { runner: this.runner, usage: this.usage, stop: (id, attempt, grace, drain) => this.drains.stop(id, attempt, grace, drain), admitEpoch: this.metrics.countingStaleEpochs((e) => this.fence.admit(e)), status: () => this.status(), bodyLimit: 4 * 1024 * 1024 },
      this.tokens,
    );
    app.use(api.routes()).use(api.allowedMethods());
    if (this.blobServer) app.use(this.blobServer.router(this.tokens).routes());
    const misc = new Router();
    misc.get("/healthz", (ctx) => {
      ctx.body = { ok: true, id: this.id };
    });
    misc.get("/metrics", requireRole(this.tokens, "read"), async (ctx) => {
      ctx.type = "text/plain; version=0.0.4";
      ctx.body = await this.metrics.registry.metrics();
    });
    misc.get("/", (ctx) => {
      ctx.type = "html";
      ctx.body = agentPage(this.status());
    });
    app.use(misc.routes());
    this.server = await listenDaemon(app.callback(), this.config.agent.listen, this.tls);
    serveUpgrades(this.server, [execRoute(this.runner, this.log.child({ part: "exec" }))], this.tokens, this.log);
    this.log.info({ url: this.url }, "agent listening");
  }

  /** One usage sample per task and for the machine, from the readings just taken for the report. */
  private sampleUsage(): void {
    const now = Date.now();
    // At the moment each reading was taken, as the primary's estimates use it: a reading not refreshed since adds no sample.
    for (const t of this.runner.runningUsage()) this.usage.recordTask(t.taskId, t.attempt, t.usage.sampledAt, t.usage, t.startedAt);
    this.usage.recordMachine(now, { cpuNs: machineCpuNs(), memoryBytes: machineLoad(this.dataDir).memoryUsed });
    this.usage.retain(new Set(this.runner.all().map((r) => r.dispatch.taskId)));
    void this.reclaim.enforce(now).catch((e: unknown) => this.log.warn({ err: e }, "reclamation enforcement failed"));
  }

  status() {
    return {
      id: this.id,
      url: this.url,
      startedAt: this.startedAt,
      epoch: this.fence.highest,
      leader: this.registration.leader ?? null,
      zookeeper: this.registration.zookeeperState,
      drivers: { lxc: Boolean(this.drivers.lxc), process: true },
      attributes: this.attributes,
      ...measureCapacity(this.config.agent),
      load: machineLoad(this.dataDir),
      tasks: this.runner.report(),
      packages: this.cache.stats(),
      ...(this.blobServer ? { blobServing: this.blobServer.stats() } : {}),
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
      ...(this.blobServer ? { blobs: (await this.cache.blobs()).map(String) } : {}),
      ...(this.devices.ad().length > 0 ? { devices: this.devices.ad() } : {}),
      load: machineLoad(this.dataDir),
      startedAt: this.startedAt,
    };
  }

  /**
   * Stops the daemon, not its tasks (they run on detached). `deregister`
   * removes the znode at once (a clean shutdown), instead of letting the
   * session time out; without it the session stays open for the next
   * incarnation (registration.ts).
   */
  async stop(opts: { deregister?: boolean; stopTasks?: boolean } = {}): Promise<void> {
    this.reporter.stop();
    if (this.cutOffTimer) clearInterval(this.cutOffTimer);
    this.registration.stop();
    this.runner.close();
    if (opts.stopTasks) {
      await Promise.all(this.runner.all().map((r) => this.runner.stop(r.dispatch.taskId, r.dispatch.attempt, this.config.agent.stopGrace).catch(() => false)));
    }
    await this.naming?.stop({ deregister: Boolean(opts.deregister) });
    await Promise.all([this.drivers.process.close?.(), this.drivers.lxc?.close?.()]);
    this.rotator?.stop();
    if (opts.deregister) await this.registration.deregister();
    await this.cache.close();
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
