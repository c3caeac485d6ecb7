import type { Server } from "node:http";
import Koa from "koa";
import Router from "@koa/router";
import type { Got } from "got";
import { TokenTable } from "../common/auth.js";
import { parseListen, type Config } from "../common/config.js";
import { ValidationError } from "../common/errors.js";
import { createHttpClient, openUpgrade, sourceAddressOf } from "../common/http.js";
import { EXEC_PROTOCOL } from "../exec/frames.js";
import { serveUpgrades, type UpgradeRoute } from "../http/upgrade.js";
import { execProxyRoute, type AgentUpgrade } from "./http/exec.js";
import { readJson } from "../common/json.js";
import { createLogger, type Logger } from "../common/logger.js";
import { PackageRecordSchema } from "../common/schemas/packages.js";
import type { JobSpec } from "../common/types.js";
import { Election, readLeader, type LeaderInfo } from "../coord/election.js";
import { zpaths } from "../coord/paths.js";
import { SessionKeeper, type SessionEnd } from "../coord/session-keeper.js";
import { migrateAcls } from "../coord/acl-migration.js";
import { zookeeperAuthOf } from "../coord/credential.js";
import type { ZkAuth } from "../coord/zk/acl.js";
import { ZkStateStore } from "../coord/state-store.js";
import type { ZkSession } from "../coord/zk.js";
import { BlobStore } from "../storage/blob-store.js";
import type { DeliveryRecord } from "../alerting/types.js";
import { alertingConfigFrom } from "../alerting/index.js";
import { readAlertHistory, TermAlerting } from "./alerting.js";
import { Collector } from "./collector/collector.js";
import { HttpDispatcher } from "./dispatcher/dispatcher.js";
import { EventBus } from "./events.js";
import { alertsRouter } from "./http/alerts.js";
import { apiRouter, type ManagerView } from "./http/api.js";
import { callerOf, requireRole } from "../http/auth.js";
import { AuditLog, auditMutations } from "../auth/audit.js";
import { authRouter } from "../auth/routes.js";
import { TokenStore } from "../auth/token-store.js";
import { QuotaStore } from "../auth/quotas.js";
import { quotasRouter } from "./http/quotas.js";
import { errorEnvelope } from "../http/edge.js";
import { cellCaOf, daemonUrl, listenDaemon, servingTls, type ServingTls } from "../http/tls.js";
import { renderMetrics } from "./http/metrics.js";
import { pagesRouter } from "./http/pages.js";
import { namesRouter } from "./http/names.js";
import { Resolver } from "../../naming/resolver.js";
import { PackageRegistry } from "./packages/registry.js";
import { packagesRouter } from "./packages/routes.js";
import { IdempotencyStore } from "./idempotency/store.js";
import { WorkflowStore } from "./workflow/store.js";
import { workflowRouter } from "./workflow/routes.js";
import { workflowPagesRouter } from "./workflow/pages.js";
import { VersionStore } from "./versions/store.js";
import { Primary } from "./primary/primary.js";
import { LazyHistory } from "../history/lazy.js";
import { deploymentsRouter } from "./http/deployments.js";
import { historyRouter } from "./http/history.js";
import { ManagerMetrics } from "../metrics/manager.js";
import { openApiRouter } from "./http/openapi/router.js";

/**
 * The Central Manager daemon. Every manager serves the API and pages from its
 * warm copy of the state; the one elected primary also runs the control loop.
 *
 * Session loss ends the primary's term at once (`Primary.fence`), then the
 * manager rejoins with a fresh session as a backup: it never tries to keep
 * acting on a session that ZooKeeper has expired. A session disconnected for
 * longer than it can be trusted alive (half its timeout with no server
 * vouching for it, zk/trust.ts) counts as lost: a primary cut off from
 * ZooKeeper steps down before a backup can have taken over, and answers as
 * no primary until its next session has joined the election.
 */

interface Term {
  zk: ZkSession;
  store: ZkStateStore;
  collector: Collector;
  election: Election;
  packages: PackageRegistry;
  tokens: TokenStore;
  quotas: QuotaStore;
  workflows: WorkflowStore;
  primary?: Primary;
  /** The primary's alerting, for as long as this term is the primary's. */
  alerting?: TermAlerting;
  /** The history store, opened by the primary on first use and closed when its term ends (the embedded engine is one process's). */
  history?: LazyHistory;
}

export class ManagerDaemon {
  readonly id: string;
  readonly url: string;
  readonly bus = new EventBus();
  private readonly log: Logger;
  private readonly tokens: TokenTable;
  /** What this manager presents to agents (dispatch, stop, logs): its manager-role token, or the admin token in configs without one. */
  private readonly credential: string;
  private readonly audit: AuditLog;
  private server?: Server;
  private term?: Term;
  private leaderInfo?: LeaderInfo;
  /** Keeps this manager's session: a new term on each one. */
  private readonly keeper: SessionKeeper;
  private readonly http: Got;
  private readonly tls: ServingTls;
  /** What this manager's clients (dispatches, log proxying) verify agents against. */
  private readonly cellCa: Buffer | undefined;
  /** Where this manager's requests to agents and managers come from: its own address. */
  private readonly localAddress: string | undefined;
  /** Naming lookups for the API, on its own ZooKeeper session (reads only; unaffected by terms). */
  private readonly resolver: Resolver;
  /** Torca's ZooKeeper credential; naming lookups (the resolver) need none. */
  private readonly zkAuth: ZkAuth | undefined;
  /** This manager's metric families (the same on the primary and the backups). */
  readonly metrics = new ManagerMetrics();

  constructor(private readonly config: Config) {
    this.id = config.manager.id;
    // Refuses plain HTTP beyond loopback before anything starts.
    this.tls = servingTls(config, "manager");
    this.cellCa = cellCaOf(config.cluster);
    this.url = daemonUrl(config.manager.listen, config.manager.advertiseUrl, this.tls);
    this.log = createLogger("manager", { manager: this.id });
    this.tokens = TokenTable.fromConfig(config);
    this.credential = TokenTable.credentialOf(config, "manager");
    this.localAddress = sourceAddressOf(parseListen(config.manager.listen).host);
    this.http = createHttpClient({ token: this.credential, timeoutMs: 10_000, ca: this.cellCa, localAddress: this.localAddress });
    this.audit = new AuditLog(() => this.term?.zk, config.cluster.root, this.log.child({ part: "audit" }));
    const c = config.cluster;
    this.zkAuth = zookeeperAuthOf(c);
    this.resolver = new Resolver({ zookeeper: c.zookeeper, root: c.root, sessionTimeoutMs: c.sessionTimeout, logger: this.log.child({ part: "naming" }) });
    // A new term follows an expiry or a suspension only: a session that ends closed (closed here, or refused by the client, e.g. authentication) is not replaced.
    this.keeper = new SessionKeeper(
      { onSession: (zk) => this.join(zk), onSessionLost: (zk, why) => this.endTerm(zk, why) },
      { connect: c.zookeeper, sessionTimeoutMs: c.sessionTimeout, ...(this.zkAuth ? { auth: this.zkAuth } : {}), ends: ["expired", "suspended"], renewDelayMs: 200, purpose: "joining", logger: this.log, observe: this.metrics.zookeeper },
    );
  }

  get isPrimary(): boolean {
    return this.term?.primary?.isActive === true;
  }

  get epoch(): number | undefined {
    return this.term?.primary?.epoch;
  }

  private view(): ManagerView {
    return {
      id: this.id,
      url: this.url,
      store: () => this.term?.store,
      collector: () => this.term?.collector,
      primary: () => this.term?.primary,
      quotas: () => this.term?.quotas,
      history: () => (this.term?.primary?.isActive ? this.term.history : undefined),
      leader: () => this.leaderInfo,
      zookeeperState: () => (this.term ? (this.term.zk.isConnected ? "connected" : this.term.zk.isAlive ? "disconnected" : "expired") : "connecting"),
      resolvePackage: (spec) => this.resolvePackage(spec),
      bus: this.bus,
      http: this.http,
      bodyLimit: this.config.manager.bodyLimit,
    };
  }

  /** The HTTP application: every router this manager serves (start() listens with it; tests enumerate its routes). */
  buildApp(): Koa {
    const app = new Koa();
    app.proxy = false;
    const v = this.view();
    // Outermost: the duration covers the whole request and the code is the one the error edge gave.
    app.use(this.metrics.http);
    app.use(errorEnvelope(this.log));
    app.use(auditMutations(this.audit, this.id));
    const api = apiRouter(v, this.tokens);
    const misc = new Router();
    misc.get("/metrics", requireRole(this.tokens, "read"), async (ctx) => {
      ctx.type = "text/plain; version=0.0.4";
      ctx.body = renderMetrics(v, callerOf(ctx)) + (await this.metrics.registry.metrics());
    });
    misc.get("/healthz", (ctx) => {
      ctx.body = { ok: true, id: this.id, primary: this.isPrimary };
    });
    app.use(api.routes()).use(api.allowedMethods());
    const history = historyRouter(v, this.tokens);
    app.use(history.routes()).use(history.allowedMethods());
    const deployments = deploymentsRouter(v, this.tokens);
    app.use(deployments.routes()).use(deployments.allowedMethods());
    const names = namesRouter(this.resolver, this.tokens);
    app.use(names.routes()).use(names.allowedMethods());
    const packages = packagesRouter(
      { view: v, registry: () => this.term?.packages, store: new BlobStore(this.config.manager.storageDir), packageLimit: this.config.manager.packageLimit, packageLimits: this.config.manager.packageLimits },
      this.tokens,
    );
    app.use(packages.routes()).use(packages.allowedMethods());
    const alerts = alertsRouter({ history: (limit) => this.alertHistory(limit) }, this.tokens);
    app.use(alerts.routes());
    const auth = authRouter({ store: () => this.term?.tokens, audit: this.audit, bodyLimit: this.config.manager.bodyLimit }, this.tokens);
    app.use(auth.routes()).use(auth.allowedMethods());
    const quotas = quotasRouter(v, this.tokens);
    app.use(quotas.routes()).use(quotas.allowedMethods());
    const workflows = workflowRouter({ view: v, store: () => this.term?.workflows }, this.tokens);
    app.use(workflows.routes()).use(workflows.allowedMethods());
    app.use(misc.routes());
    const pages = pagesRouter(v, this.tokens);
    app.use(pages.routes());
    app.use(workflowPagesRouter({ view: v, store: () => this.term?.workflows }, this.tokens).routes());
    app.use(openApiRouter().routes());
    return app;
  }

  /** The HTTP upgrades this manager serves beside the app (torca exec); tests check the OpenAPI document against them too. */
  upgradeRoutes(): UpgradeRoute[] {
    const openAgent: AgentUpgrade = (url, headers) => openUpgrade(url, { protocol: EXEC_PROTOCOL, token: this.credential, ca: this.cellCa, localAddress: this.localAddress, headers });
    return [execProxyRoute(this.view(), openAgent, this.log.child({ part: "exec" }))];
  }

  async start(): Promise<void> {
    const app = this.buildApp();
    void this.resolver.start();
    this.server = await listenDaemon(app.callback(), this.config.manager.listen, this.tls);
    this.server.keepAliveTimeout = 5000;
    serveUpgrades(this.server, this.upgradeRoutes(), this.tokens, this.log);
    this.log.info({ url: this.url }, "manager listening");
    await this.keeper.start();
  }

  /** A fresh session: a new term whose copy of the state loads and which runs for election. */
  private async join(zk: ZkSession): Promise<void> {
    const c = this.config.cluster;
    const store = new ZkStateStore(zk, c.root, this.log);
    const collector = new Collector(zk, c.root, this.log);
    const election = new Election(zk, c.root, { id: this.id, url: this.url }, this.log);
    const tokens = new TokenStore(zk, c.root, this.log.child({ part: "tokens" }));
    // A cell whose znodes predate their ACLs gets them before anything else is read.
    if (this.zkAuth) await migrateAcls(zk, this.zkAuth, this.log);
    const quotas = new QuotaStore(zk, c.root, this.log.child({ part: "quotas" }));
    const workflows = new WorkflowStore(zk, c.root, this.log.child({ part: "workflows" }));
    const term: Term = { zk, store, collector, election, packages: new PackageRegistry(zk, c.root), tokens, quotas, workflows };
    this.term = term;
    store.on("job", (job, id) => this.bus.publish("job", id, job ?? { id, deleted: true }));
    store.on("task", (task, id) => this.bus.publish("task", id, task ?? { id, deleted: true }));
    collector.on("node-up", (n) => this.bus.publish("node", n.id, n));
    collector.on("node-changed", (n) => this.bus.publish("node", n.id, n));
    collector.on("node-lost", (n) => this.bus.publish("node", n.id, n));
    election.on("elected", (info) => void this.becomePrimary(term, info));
    try {
      await tokens.start();
      this.tokens.useDynamic(tokens);
      await quotas.start();
      await store.start();
      await collector.start();
      await this.watchLeader(term);
      await election.start();
    } catch (e) {
      this.tokens.useDynamic(undefined);
      tokens.close();
      quotas.close();
      if (this.term === term) this.term = undefined;
      throw e;
    }
  }

  /** The term's session expired or is suspended: its primary (if it was one) is fenced at once; the keeper opens the next session. */
  private endTerm(zk: ZkSession, why: SessionEnd): void {
    const term = this.term;
    if (term?.zk !== zk) return;
    // A store without a session cannot learn of revocations: its tokens are refused until the next term's store has read the set.
    this.tokens.useDynamic(undefined);
    term.tokens.close();
    term.quotas.close();
    term.primary?.fence("session-lost");
    void term.alerting?.close();
    void term.history?.close();
    term.collector.close();
    this.term = undefined;
    const what =
      why === "suspended" ? "cut off from ZooKeeper longer than the session can be trusted alive: stepped down; rejoining with a new session once ZooKeeper answers" : why === "abandoned" ? "gave up the session; rejoining with a new one" : "session ended; rejoining as a backup with a new session";
    this.log.warn({ why, was: term.primary ? "primary" : "backup" }, what);
  }

  private async watchLeader(term: Term): Promise<void> {
    if (this.term !== term || !term.zk.isAlive) return;
    const info = await readLeader(term.zk, this.config.cluster.root, () => void this.watchLeader(term).catch(() => undefined));
    const changed = info?.epoch !== this.leaderInfo?.epoch;
    this.leaderInfo = info;
    if (changed && info) this.bus.publish("leader", info.id, info);
  }

  private async becomePrimary(term: Term, info: LeaderInfo): Promise<void> {
    if (this.term !== term) return;
    const t0 = Date.now();
    try {
      await term.store.becomeAuthoritative();
    } catch (e) {
      // Elected but unable to read the state whole: a primary must not act on part of it. Giving the session up
      // ends the term (another manager, or this one with a new session, is elected).
      if (this.term !== term) return;
      this.log.error({ err: e, epoch: info.epoch }, "elected, but could not take over the state; giving up this session");
      this.keeper.abandon(term.zk);
      return;
    }
    const m = this.config.manager;
    const alerting = new TermAlerting({
      zk: term.zk,
      root: this.config.cluster.root,
      config: alertingConfigFrom(m.alerting),
      store: term.store,
      manager: { id: this.id, url: this.url },
      epoch: info.epoch,
      bus: this.bus,
      logger: this.log.child({ epoch: info.epoch, component: "alerting" }),
      onDelivery: (rec) => this.metrics.alertDelivery(rec),
    });
    term.alerting = alerting;
    const history = new LazyHistory(m.history, this.log.child({ component: "history" }));
    term.history = history;
    const primary = new Primary(
      term.store,
      term.collector,
      this.metrics.timedDispatcher(new HttpDispatcher(this.credential, this.log, { ca: this.cellCa, localAddress: this.localAddress })),
      {
        epoch: info.epoch,
        schedulerIntervalMs: m.schedulerInterval,
        placementStrategy: m.placementStrategy,
        schedulerWorkers: m.schedulerWorkers,
        reconcileGraceMs: this.config.agent.reportInterval + 2000,
        missingGraceMs: 10_000,
        stopGraceMs: this.config.agent.stopGrace,
        quotas: term.quotas,
        reclamation: { enabled: m.reclamation.enabled, margin: m.reclamation.margin, windowMs: m.reclamation.window },
        disconnect: { graceMs: m.disconnect.grace, minNodes: m.disconnect.minNodes, massLossShare: m.disconnect.massLossShare, massLossWindowMs: m.disconnect.massLossWindow },
        zookeeperWritable: () => term.zk.isConnected,
        idempotency: new IdempotencyStore(term.zk, this.config.cluster.root, m.idempotencyTtl, this.log),
        trimmers: [{ name: "expired tokens", trim: (now) => term.tokens.trim(now, m.retention.expiredTokens) }],
        retention: { terminalMs: m.retention.terminal, keepPerNamespace: m.retention.keepPerNamespace, batch: m.retention.batch },
        history: () => history.get(),
        observer: this.metrics,
        workflows: term.workflows,
        historyReady: () => history.ready(),
        versions: new VersionStore(term.zk, this.config.cluster.root),
      },
      this.log.child({ epoch: info.epoch }),
      alerting.sink,
    );
    term.primary = primary;
    const endOfTerm = () => {
      primary.fence("deposed");
      void alerting.close();
      void history.close();
    };
    term.election.once("deposed", endOfTerm);
    if (!term.zk.isAlive) return endOfTerm();
    primary.start();
    // Deliveries the previous primary left pending are ours now.
    alerting.start().catch((e: unknown) => this.log.warn({ err: e }, "resuming alert deliveries failed"));
    if (info.epoch > 1) alerting.raiseFailover(info, this.leaderInfo);
    this.leaderInfo = info;
    this.log.info({ epoch: info.epoch, ms: Date.now() - t0, jobs: term.store.jobs.size }, "acting as primary");
    this.bus.publish("leader", info.id, info);
  }

  private alertHistory(limit: number): Promise<DeliveryRecord[]> | undefined {
    const term = this.term;
    if (!term) return undefined;
    if (term.alerting && term.primary?.isActive) return term.alerting.history(limit);
    return readAlertHistory(term.zk, this.config.cluster.root, limit);
  }

  private async resolvePackage(spec: JobSpec): Promise<string | undefined> {
    const ref = spec.package;
    if (!ref) return undefined;
    if (ref.kind === "digest") return ref.digest;
    const term = this.term;
    if (!term) return undefined;
    const path = zpaths(this.config.cluster.root).packageVersion(ref.name, ref.version);
    const r = await term.zk.getIfExists(path);
    if (!r) throw new ValidationError([{ field: "package", message: `package ${ref.name}@${ref.version} is not in shared storage (push it with: torca push DIR --name ${ref.name} --version ${ref.version})` }]);
    return readJson(PackageRecordSchema, r.data, path).digest;
  }

  /** Stops serving; a primary resigns so a backup takes over without waiting for the session timeout. */
  async stop(): Promise<void> {
    this.keeper.stop();
    this.resolver.close();
    const term = this.term;
    this.term = undefined;
    if (term) {
      term.primary?.fence();
      await term.primary?.idle();
      await term.alerting?.close();
      await term.history?.close();
      term.collector.close();
      term.tokens.close();
      term.quotas.close();
      await term.election.resign().catch(() => undefined);
      term.zk.close();
    }
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

