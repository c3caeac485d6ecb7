import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { readTokenFile } from "../common/auth.js";
import { digestOf } from "../auth/secret.js";
import { NotFoundError, UnavailableError } from "../common/errors.js";
import { createHttpClient } from "../common/http.js";
import { ensureZookeeperCredentialFile, zookeeperAuthOf } from "../coord/credential.js";
import type { ZkAuth } from "../coord/zk/acl.js";
import { ensureCellCa, ensureDaemonCertificate, type CertificateFiles } from "./certificates.js";
import { freePort } from "./ports.js";
import { startZooKeeper, type ZooKeeperServer } from "./zookeeper-server.js";

/**
 * A whole cell on one machine (`torca up`, and the integration tests): its own
 * ZooKeeper on loopback, managers and agents as real child processes, each
 * with a generated config under the cell directory.
 *
 * Ports are chosen once and kept in cell.json, so URLs stay the same when the
 * cell is stopped and started again (and ZooKeeper's data survives).
 */

export interface CellLayout {
  dir: string;
  zookeeperPort: number;
  managers: { id: string; port: number }[];
  agents: { id: string; port: number; portRange: [number, number] }[];
}

export interface LocalCellOptions {
  dir: string;
  managers?: number;
  agents?: number;
  /** Session timeout for all daemons (tests use short ones). */
  sessionTimeout?: string;
  tickTimeMs?: number;
  /** ZooKeeper's Java heap (default 256m; large benchmarks hold far more state). */
  zookeeperHeap?: string;
  reportInterval?: string;
  agentDriver?: "auto" | "lxc" | "process";
  /** Where daemons' stdout/stderr go (default <dir>/logs). */
  logDir?: string;
  /** Extra YAML appended to every manager config's `manager:` section. */
  managerExtra?: Record<string, unknown>;
  /** Extra settings merged into every agent config's `agent:` section. */
  agentExtra?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Agents stop their tasks when they are stopped (torca up's Ctrl-C leaves no orphans). */
  stopTasksOnExit?: boolean;
  /** Extra node flags for every daemon (benches profile with `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /**
   * Connect string of a ZooKeeper the cell does not own (e.g. a test ensemble):
   * no server is started or stopped, daemons are pointed at this one.
   */
  externalZooKeeper?: string;
  /** Every daemon on HTTPS with certificates from a cell CA made under `<dir>/tls` (`torca up --tls`). */
  tls?: boolean;
  /**
   * Each daemon's own address, by id ("zookeeper" for the cell's server), which
   * it listens on, advertises and sends from: one loopback address per "host"
   * (127.0.0.2, 127.0.0.3, …) lets a test cut traffic between them. Unlisted
   * daemons use 127.0.0.1.
   */
  hosts?: Record<string, string>;
}

/** `GET /v1/leader`: the primary as this manager sees it, and whether it is that primary. */
export interface LeaderView {
  id: string;
  url: string;
  epoch: number;
  isPrimary: boolean;
}

export interface Daemon {
  id: string;
  kind: "manager" | "agent";
  url: string;
  config: string;
  process?: ChildProcess;
  /** Its log file, and where this run's output in it begins. */
  log?: { file: string; offset: number };
  /** How its current run ended, once it did. */
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

export interface WaitOptions {
  /** Fail at once, with the daemon's own error, when a daemon's run ends while waiting. */
  failOnExit?: boolean;
}

/**
 * A daemon's own account of why it stopped, from its output: the CLI's
 * `torca: …` line for an error it died of, else the message of its last
 * error-level log record, else its last line.
 */
export function lastError(output: string): string | undefined {
  const lines = output.split("\n").map((l) => l.trim()).filter(Boolean).reverse();
  const cli = lines.find((l) => l.startsWith("torca: "));
  if (cli) return cli.slice("torca: ".length);
  for (const l of lines) {
    if (!l.startsWith("{")) continue;
    try {
      const r = JSON.parse(l) as { level?: unknown; msg?: unknown; err?: { message?: unknown } };
      if (typeof r.level === "number" && r.level >= 50) return [r.msg, r.err?.message].filter((x) => typeof x === "string" && x).join(": ");
    } catch {
      /* not a log record */
    }
  }
  return lines[0];
}

/**
 * The managers' V8 heap ceiling, as in the shipped systemd unit and master
 * example. Not a tight limit (a manager holding 100,000 tasks has a live heap
 * of about 160 MB) but a ceiling V8 sizes its heap growth by: under the
 * default 4 GB ceiling it let the heap grow to four times the live set
 * between collections (about 700 MB resident after a 100,000-task burst),
 * under 1 GB to about 1.6 times (about 430 MB).
 */
const MANAGER_HEAP_FLAG = "--max-old-space-size=1024";

/** Configs and layout: the cell's alone (tasks run under other uids on the same host). */
function writePrivate(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

const BIN = resolve(new URL("../../../bin/torca.js", import.meta.url).pathname);

export class LocalCell {
  readonly dir: string;
  zookeeper?: ZooKeeperServer;
  readonly daemons = new Map<string, Daemon>();
  layout!: CellLayout;
  /** The admin token. */
  token!: string;
  /** The managers' token towards agents (for stand-ins of agents, such as the simulated cell). */
  managerToken!: string;
  /** With `tls`: the cell CA (clients trust it) and each daemon's certificate, by daemon id. */
  private certificates?: { ca: string; caPem: Buffer; daemons: Map<string, CertificateFiles> };

  constructor(private readonly o: LocalCellOptions) {
    this.dir = resolve(o.dir);
  }

  /** The admin token: the CLI's (cell.json names it). Never given to agents. */
  get tokenFile(): string {
    return join(this.dir, "token");
  }

  /** The agents' own credential (role agent: report, fetch blobs). */
  get agentTokenFile(): string {
    return join(this.dir, "agent-token");
  }

  /** The managers' credential towards agents (role manager: dispatch, stop, logs). */
  get managerTokenFile(): string {
    return join(this.dir, "manager-token");
  }

  /** The cell's ZooKeeper credential ("torca:…", 0600), created at the first start: its znodes get ACLs. */
  get zookeeperAuthFile(): string {
    return join(this.dir, "zookeeper-auth");
  }

  /** What a client of the cell's ZooKeeper (a test, a bench) authenticates with. */
  get zookeeperAuth(): ZkAuth {
    return zookeeperAuthOf({ root: "/torca", zookeeperAuth: { file: this.zookeeperAuthFile } })!;
  }

  get managerUrls(): string[] {
    return this.layout.managers.map((m) => this.urlOf(m.id, m.port));
  }

  /** The address daemon `id` (or "zookeeper") listens on and sends from. */
  hostOf(id: string): string {
    return this.o.hosts?.[id] ?? "127.0.0.1";
  }

  private urlOf(id: string, port: number): string {
    return `${this.o.tls ? "https" : "http"}://${this.hostOf(id)}:${port}`;
  }

  /** The cell CA's certificate (PEM path) when the cell runs on TLS. */
  get caFile(): string | undefined {
    return this.certificates?.ca;
  }

  /** What a client of this cell trusts: the CA's PEM, or nothing for a plain-HTTP cell. */
  get ca(): Buffer | undefined {
    return this.certificates?.caPem;
  }

  /** The cell CA and a certificate per daemon naming its address, 127.0.0.1 and localhost (kept across restarts). */
  private async makeCertificates(): Promise<void> {
    const dir = join(this.dir, "tls");
    const ca = await ensureCellCa(dir);
    const daemons = new Map<string, CertificateFiles>();
    for (const d of [...this.layout.managers, ...this.layout.agents]) daemons.set(d.id, await ensureDaemonCertificate(dir, ca, d.id, [...new Set([this.hostOf(d.id), "127.0.0.1"]), "localhost"]));
    this.certificates = { ca: ca.cert, caPem: readFileSync(ca.cert), daemons };
  }

  /** A daemon's `cluster.tls` (its own certificate and key), for its config. */
  private tlsOf(id: string): Record<string, unknown> {
    const own = this.certificates?.daemons.get(id);
    return own ? { tls: { ca: this.certificates!.ca, cert: own.cert, key: own.key } } : {};
  }

  private async planLayout(): Promise<CellLayout> {
    const f = join(this.dir, "layout.json");
    if (existsSync(f)) {
      const l = JSON.parse(readFileSync(f, "utf8")) as CellLayout;
      if (l.managers.length === (this.o.managers ?? 2) && l.agents.length === (this.o.agents ?? 1)) return l;
    }
    const managers = [];
    for (let i = 1; i <= (this.o.managers ?? 2); i++) managers.push({ id: `manager-${i}`, port: await freePort(this.hostOf(`manager-${i}`)) });
    const agents = [];
    for (let i = 1; i <= (this.o.agents ?? 1); i++) {
      const base = 20000 + ((process.pid * 7 + i * 500) % 30000);
      agents.push({ id: `agent-${i}`, port: await freePort(this.hostOf(`agent-${i}`)), portRange: [base, base + 399] as [number, number] });
    }
    const l: CellLayout = { dir: this.dir, zookeeperPort: await freePort(this.hostOf("zookeeper")), managers, agents };
    writePrivate(f, JSON.stringify(l, null, 2));
    return l;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    // Tasks pass through the cell dir to their work dirs in the agents' data dirs; the rest is private.
    chmodSync(this.dir, 0o711);
    for (const d of ["storage", ...(this.o.externalZooKeeper ? [] : ["zookeeper"]), ...(this.o.logDir ? [] : ["logs"])]) {
      mkdirSync(join(this.dir, d), { recursive: true, mode: 0o700 });
      chmodSync(join(this.dir, d), 0o700);
    }
    this.layout = await this.planLayout();
    // One token file per role, each 0600; agents get only their own and the digests of the tokens they verify.
    this.token = readTokenFile(this.tokenFile, true);
    readTokenFile(this.agentTokenFile, true, "agentTokenFile");
    this.managerToken = readTokenFile(this.managerTokenFile, true, "managerTokenFile");
    ensureZookeeperCredentialFile(this.zookeeperAuthFile);
    if (!this.o.externalZooKeeper) {
      this.zookeeper = await startZooKeeper({ dataDir: join(this.dir, "zookeeper"), host: this.hostOf("zookeeper"), port: this.layout.zookeeperPort, tickTimeMs: this.o.tickTimeMs ?? 1000, ...(this.o.zookeeperHeap ? { heap: this.o.zookeeperHeap } : {}) });
    }
    if (this.o.tls) await this.makeCertificates();
    for (const m of this.layout.managers) this.writeManagerConfig(m);
    for (const a of this.layout.agents) this.writeAgentConfig(a);
    writePrivate(join(this.dir, "cell.json"), JSON.stringify({ dir: this.dir, managers: this.managerUrls, tokenFile: this.tokenFile, zookeeper: this.zookeeperConnect, ...(this.caFile ? { ca: this.caFile } : {}) }, null, 2));
    for (const m of this.layout.managers) this.startDaemon(m.id);
    for (const a of this.layout.agents) this.startDaemon(a.id);
  }

  /** What the daemons connect to: the cell's own server, or the external one. */
  get zookeeperConnect(): string {
    return this.o.externalZooKeeper ?? `${this.hostOf("zookeeper")}:${this.layout.zookeeperPort}`;
  }

  private common(id: string, cluster: Record<string, unknown>): Record<string, unknown> {
    return {
      cluster: {
        ...this.tlsOf(id),
        name: "local",
        zookeeper: this.zookeeperConnect,
        sessionTimeout: this.o.sessionTimeout ?? "4s",
        zookeeperAuth: { file: this.zookeeperAuthFile },
        ...cluster,
      },
    };
  }

  /** The digest of a token file's secret: a daemon given it can verify that token but not present it. */
  private digestOfFile(file: string): string {
    return digestOf(readTokenFile(file));
  }

  private writeManagerConfig(m: { id: string; port: number }): void {
    const cfg = {
      ...this.common(m.id, { tokenFile: this.tokenFile, managerTokenFile: this.managerTokenFile, agentTokenSha256: this.digestOfFile(this.agentTokenFile) }),
      manager: { id: m.id, listen: `${this.hostOf(m.id)}:${m.port}`, storageDir: join(this.dir, "storage"),
        // One embedded history store for the cell: only the primary opens it, and its lock refuses a second process.
        history: { engine: "embedded", dir: join(this.dir, "history") },
        schedulerInterval: "200ms", ...(this.o.managerExtra ?? {}) },
      agent: { reportInterval: this.o.reportInterval ?? "2s" },
    };
    const file = join(this.dir, `${m.id}.json`);
    writePrivate(file, JSON.stringify(cfg, null, 2));
    this.daemons.set(m.id, { id: m.id, kind: "manager", url: this.urlOf(m.id, m.port), config: file });
  }

  private writeAgentConfig(a: { id: string; port: number; portRange: [number, number] }): void {
    const cfg = {
      ...this.common(a.id, { agentTokenFile: this.agentTokenFile, managerTokenSha256: this.digestOfFile(this.managerTokenFile), adminTokenSha256: this.digestOfFile(this.tokenFile) }),
      agent: {
        id: a.id,
        listen: `${this.hostOf(a.id)}:${a.port}`,
        dataDir: join(this.dir, a.id),
        portRange: a.portRange,
        reportInterval: this.o.reportInterval ?? "2s",
        driver: this.o.agentDriver ?? "auto",
        storageDir: join(this.dir, "storage"),
        labels: { cell: "local" },
        ...(this.o.agentExtra ?? {}),
      },
    };
    const file = join(this.dir, `${a.id}.json`);
    writePrivate(file, JSON.stringify(cfg, null, 2));
    this.daemons.set(a.id, { id: a.id, kind: "agent", url: this.urlOf(a.id, a.port), config: file });
  }

  /** Starts (or restarts) one daemon as a child process. */
  startDaemon(id: string): Daemon {
    const d = this.daemons.get(id);
    if (!d) throw new NotFoundError("daemon", id);
    const logDir = this.o.logDir ?? join(this.dir, "logs");
    mkdirSync(logDir, { recursive: true });
    const logFile = join(logDir, `${id}.log`);
    const fd = openSync(logFile, "a");
    d.log = { file: logFile, offset: statSync(logFile).size };
    d.exit = undefined;
    const extra = d.kind === "agent" && this.o.stopTasksOnExit ? ["--stop-tasks-on-exit"] : [];
    const heap = d.kind === "manager" ? [MANAGER_HEAP_FLAG] : [];
    d.process = spawn(process.execPath, ["--enable-source-maps", ...heap, ...(this.o.nodeArgs ?? []), BIN, d.kind, "--config", d.config, ...extra], {
      stdio: ["ignore", fd, fd],
      env: { ...process.env, ...(this.o.env ?? {}), TORCA_LOG_LEVEL: process.env.TORCA_LOG_LEVEL ?? "info", NODE_TEST_CONTEXT: undefined },
    });
    closeSync(fd);
    const child = d.process;
    child.once("exit", (code, signal) => {
      if (d.process === child) d.exit = { code, signal };
    });
    return d;
  }

  /**
   * Waits until a primary is elected and `agents` nodes are ready, failing at
   * once when a daemon exits meanwhile, with that daemon's own error: a daemon
   * that cannot start (a bad config, a port in use) exits within a second, and
   * nothing would answer for the rest of the wait.
   */
  async waitUntilUp(agents: number, timeoutMs: number): Promise<LeaderView> {
    const failFast = { failOnExit: true };
    const leader = await this.waitForPrimary(timeoutMs, failFast);
    await this.waitForNodes(agents, timeoutMs, failFast);
    return leader;
  }

  /** Throws, with its own last error, for the first daemon whose run has ended. */
  private throwIfDaemonExited(): void {
    for (const d of this.daemons.values()) {
      if (!d.exit) continue;
      const how = d.exit.signal ? `killed by ${d.exit.signal}` : `exit code ${d.exit.code}`;
      const own = d.log ? lastError(readFileSync(d.log.file).subarray(d.log.offset).toString("utf8")) : undefined;
      throw new UnavailableError(`${d.id} exited during start-up (${how})${own ? `: ${own}` : ""}${d.log ? `\n  its log: ${d.log.file}` : ""}`);
    }
  }

  /** Signals one daemon (by the PID we started) and waits for it to exit. */
  async stopDaemon(id: string, signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000): Promise<void> {
    const p = this.daemons.get(id)?.process;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill(signal);
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(t);
  }

  /** The id of the manager serving at `url` (the layout's own address, so no request is made). */
  managerIdAt(url: string): string {
    const m = this.layout.managers.find((x) => url.replace(/\/$/, "") === this.urlOf(x.id, x.port));
    if (!m) throw new NotFoundError("manager serving", url);
    return m.id;
  }

  /** What the manager at `url` says about the primary (and itself); undefined when it does not answer. */
  async leaderAt(url: string, timeoutMs = 1000): Promise<LeaderView | undefined> {
    try {
      return await createHttpClient({ token: this.token, timeoutMs, retries: 0, ca: this.ca }).get(`${url}/v1/leader`).json<LeaderView>();
    } catch {
      return undefined;
    }
  }

  /** Waits until some manager names a primary; returns its URL. */
  async waitForPrimary(timeoutMs = 30_000, o: WaitOptions = {}): Promise<LeaderView> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (o.failOnExit) this.throwIfDaemonExited();
      for (const url of this.managerUrls) {
        const l = await this.leaderAt(url);
        // Confirmed by the named primary itself: a backup may still name a dead one.
        if (l && (await this.leaderAt(l.url))?.isPrimary) return l;
      }
      await sleep(100);
    }
    throw new UnavailableError(`no primary elected within ${timeoutMs} ms`);
  }

  /** Waits until the primary sees `n` ready nodes. */
  async waitForNodes(n: number, timeoutMs = 30_000, o: WaitOptions = {}): Promise<void> {
    const http = createHttpClient({ token: this.token, timeoutMs: 1000, retries: 0, ca: this.ca });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (o.failOnExit) this.throwIfDaemonExited();
      try {
        const { url } = await this.waitForPrimary(timeoutMs, o);
        const r = await http.get(`${url}/v1/nodes`).json<{ nodes: { state: string }[] }>();
        if (r.nodes.filter((x) => x.state === "ready").length >= n) return;
      } catch {
        /* not yet */
      }
      await sleep(100);
    }
    throw new UnavailableError(`${n} node(s) not ready within ${timeoutMs} ms`);
  }

  /** Stops agents first (they may stop their tasks), then managers, then ZooKeeper (if the cell owns it). */
  async stop(): Promise<void> {
    const ids = [...this.daemons.values()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "agent" ? -1 : 1)).map((d) => d.id);
    for (const id of ids) await this.stopDaemon(id).catch(() => undefined);
    await this.zookeeper?.stop();
  }
}
