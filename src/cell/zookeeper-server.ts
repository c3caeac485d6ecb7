import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, writeFileSync, closeSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { UnavailableError } from "../common/errors.js";
import { freePort } from "./ports.js";

/**
 * Runs a real ZooKeeper server (Debian's `zookeeper` package jar) on loopback,
 * for `torca up` and for tests. One server, or one member of an ensemble.
 */

export const ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar";
const LOG_JARS = ["/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar"];

export interface ZooKeeperServerOptions {
  dataDir: string;
  /** Client port; 0 or absent = a free port. */
  port?: number;
  host?: string;
  /** Lower ticks allow shorter sessions (min session = 2 × tickTime). */
  tickTimeMs?: number;
  /**
   * Ticks a follower may lag before leader and follower give each other up
   * (default 5). Sessions outlive a partition of the leader only when this
   * is shorter than the session timeout: until then the cut-off leader
   * still expires the sessions whose pings no follower can forward to it.
   */
  syncLimitTicks?: number;
  /** Ensemble membership: this server's id and every member's address (default: `host`) and quorum/election ports. */
  ensemble?: { myId: number; members: { id: number; host?: string; clientPort: number; quorumPort: number; electionPort: number }[] };
  /** Java heap. */
  heap?: string;
  /** Server log level (zookeeper.log in the data directory). */
  logLevel?: "ERROR" | "WARN" | "INFO";
}

export interface ZooKeeperServer {
  readonly port: number;
  readonly connectString: string;
  readonly pid: number;
  readonly process: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function zookeeperInstalled(): boolean {
  return existsSync(ZOOKEEPER_JAR);
}

/** Sends a four-letter-word command and returns the reply. */
export function fourLetterWord(host: string, port: number, word: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let out = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error("timeout"));
    }, timeoutMs);
    sock.on("connect", () => sock.write(word));
    sock.on("data", (d) => (out += d.toString()));
    sock.on("end", () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export async function startZooKeeper(opts: ZooKeeperServerOptions): Promise<ZooKeeperServer> {
  if (!zookeeperInstalled()) {
    throw new UnavailableError(`ZooKeeper is not installed (${ZOOKEEPER_JAR} missing): apt-get install zookeeper`);
  }
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port || (await freePort(host));
  mkdirSync(opts.dataDir, { recursive: true });
  const lines = [
    `tickTime=${opts.tickTimeMs ?? 2000}`,
    "initLimit=10",
    `syncLimit=${opts.syncLimitTicks ?? 5}`,
    `dataDir=${opts.dataDir}`,
    `clientPort=${port}`,
    `clientPortAddress=${host}`,
    "admin.enableServer=false",
    "4lw.commands.whitelist=srvr,ruok,stat,mntr",
    "maxClientCnxns=0",
    "autopurge.snapRetainCount=3",
    "autopurge.purgeInterval=1",
  ];
  if (opts.ensemble) {
    writeFileSync(join(opts.dataDir, "myid"), `${opts.ensemble.myId}\n`);
    for (const m of opts.ensemble.members) lines.push(`server.${m.id}=${m.host ?? host}:${m.quorumPort}:${m.electionPort}`);
  }
  const cfg = join(opts.dataDir, "zoo.cfg");
  writeFileSync(cfg, lines.join("\n") + "\n");
  const logFd = openSync(join(opts.dataDir, "zookeeper.log"), "a");
  // zookeeper.jar alone logs through SLF4J's no-op binding: with these, its warnings reach zookeeper.log.
  const logJars = LOG_JARS.filter((j) => existsSync(j));
  // The server belongs to the process that started it (a test, `torca up`): a parent-death signal ends it even when
  // that process is killed or aborts before it can stop the server.
  const child = spawn(
    "setpriv",
    [
      "--pdeathsig",
      "KILL",
      "--",
      "java",
      `-Xmx${opts.heap ?? "256m"}`,
      "-XX:+UseSerialGC",
      `-Dzookeeper.root.logger=${opts.logLevel ?? "WARN"},CONSOLE`,
      "-cp",
      ["/etc/zookeeper/conf", ZOOKEEPER_JAR, ...(logJars.length === LOG_JARS.length ? logJars : [])].join(":"),
      "org.apache.zookeeper.server.quorum.QuorumPeerMain",
      cfg,
    ],
    { stdio: ["ignore", logFd, logFd] },
  );
  closeSync(logFd);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const server: ZooKeeperServer = {
    port,
    connectString: `${host}:${port}`,
    pid: child.pid ?? -1,
    process: child,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (exited) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exitPromise;
      clearTimeout(t);
    },
  };
  if (!opts.ensemble) await waitServing(host, port, () => exited, 30_000);
  return server;
}

/** Waits until the server answers `srvr` with a serving mode (standalone, leader or follower). */
export async function waitServing(host: string, port: number, hasExited: () => boolean = () => false, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (hasExited()) throw new UnavailableError(`ZooKeeper on ${host}:${port} exited during start-up`);
    try {
      const reply = await fourLetterWord(host, port, "srvr");
      const mode = /Mode: (\w+)/.exec(reply)?.[1];
      if (mode) return mode;
    } catch {
      /* not up yet */
    }
    await sleep(100);
  }
  throw new UnavailableError(`ZooKeeper on ${host}:${port} did not start within ${timeoutMs} ms`);
}
