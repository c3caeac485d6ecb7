import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../src/cell/ports.js";
import { fourLetterWord, startZooKeeper, waitServing, type ZooKeeperServer } from "../../src/cell/zookeeper-server.js";
import { until } from "./wait.js";

/**
 * Test harness: a real ZooKeeper ensemble (Debian's jar) on loopback, each
 * member with its own address (127.0.0.1 for all unless `hosts` says), its
 * own free client, quorum and election ports and its own data directory
 * under one temporary directory. Members are killed, stopped and
 * restarted by the PID this harness started; `close()` ends every member it
 * started and removes the directory (call it from `after()`).
 */

export interface EnsembleMember {
  id: number;
  /** The address it serves clients and its peers on. */
  host: string;
  clientPort: number;
  quorumPort: number;
  electionPort: number;
  dataDir: string;
  /** The running server, or undefined while the member is down. */
  server?: ZooKeeperServer;
}

export interface EnsembleOptions {
  size?: number;
  /** Sessions can be as short as 2 × tickTime; tests use 2 s sessions. */
  tickTimeMs?: number;
  /** Server log level, in each member's zookeeper.log (default WARN). */
  logLevel?: "ERROR" | "WARN" | "INFO";
  /** See ZooKeeperServerOptions.syncLimitTicks. */
  syncLimitTicks?: number;
  /** Each member's own address, in member order (a partition test cuts between them). */
  hosts?: string[];
  /** Keep the data directory (for post-mortems); also TORCA_KEEP_TEST_DIRS. */
  keepDir?: boolean;
}

const DEFAULT_HOST = "127.0.0.1";

export class TestEnsemble {
  private constructor(
    readonly dir: string,
    readonly members: EnsembleMember[],
    private readonly opts: EnsembleOptions,
  ) {}

  /** Starts every member and waits until they form a quorum (one leader, the rest followers). */
  static async start(opts: EnsembleOptions = {}): Promise<TestEnsemble> {
    const dir = mkdtempSync(join(tmpdir(), "torca-ensemble-"));
    const members: EnsembleMember[] = [];
    for (let id = 1; id <= (opts.size ?? 3); id++) {
      const host = opts.hosts?.[id - 1] ?? DEFAULT_HOST;
      members.push({ id, host, clientPort: await freePort(host), quorumPort: await freePort(host), electionPort: await freePort(host), dataDir: join(dir, `zk-${id}`) });
    }
    const e = new TestEnsemble(dir, members, opts);
    try {
      for (const m of members) await e.launch(m);
      await e.waitQuorum();
    } catch (err) {
      await e.close();
      throw err;
    }
    return e;
  }

  /** The connect string of every member (down ones included: clients skip them). */
  get connectString(): string {
    return this.members.map((m) => `${m.host}:${m.clientPort}`).join(",");
  }

  member(id: number): EnsembleMember {
    const m = this.members.find((x) => x.id === id);
    if (!m) throw new Error(`no ensemble member ${id}`);
    return m;
  }

  private async launch(m: EnsembleMember): Promise<void> {
    m.server = await startZooKeeper({
      dataDir: m.dataDir,
      port: m.clientPort,
      host: m.host,
      tickTimeMs: this.opts.tickTimeMs ?? 1000,
      ...(this.opts.syncLimitTicks ? { syncLimitTicks: this.opts.syncLimitTicks } : {}),
      heap: "192m",
      logLevel: this.opts.logLevel ?? "WARN",
      ensemble: { myId: m.id, members: this.members.map((x) => ({ id: x.id, host: x.host, clientPort: x.clientPort, quorumPort: x.quorumPort, electionPort: x.electionPort })) },
    });
  }

  /** Signals one member by its PID and waits for it to exit (SIGKILL: the `kill -9` case). */
  async kill(id: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const m = this.member(id);
    const s = m.server;
    m.server = undefined;
    await s?.stop(signal);
  }

  /** Starts a stopped member again on its ports and data (it rejoins the ensemble). */
  async restart(id: number): Promise<void> {
    const m = this.member(id);
    if (m.server) throw new Error(`ensemble member ${id} is running (pid ${m.server.pid})`);
    await this.launch(m);
  }

  /** `srvr` mode of a member: leader, follower; undefined when it is down or not serving (no quorum). */
  async mode(id: number): Promise<string | undefined> {
    const m = this.member(id);
    if (!m.server) return undefined;
    try {
      const reply = await fourLetterWord(m.host, m.clientPort, "srvr");
      return /Mode: (\w+)/.exec(reply)?.[1];
    } catch {
      return undefined;
    }
  }

  /** Id of the current leader, if a running member says it leads. */
  async leaderId(): Promise<number | undefined> {
    for (const m of this.members) if ((await this.mode(m.id)) === "leader") return m.id;
    return undefined;
  }

  /** Waits until every running member serves, exactly one of them as leader. */
  async waitQuorum(timeoutMs = 60_000): Promise<{ leader: number; ms: number }> {
    const t0 = Date.now();
    const deadline = t0 + timeoutMs;
    let modes: { id: number; mode: string }[] = [];
    return until(
      "every running member serving, exactly one as leader",
      async () => {
        const running = this.members.filter((m) => m.server);
        modes = await Promise.all(
          running.map(async (m) => ({ id: m.id, mode: await waitServing(m.host, m.clientPort, () => m.server?.process.exitCode !== null, Math.max(1, deadline - Date.now())) })),
        );
        const leaders = modes.filter((x) => x.mode === "leader");
        return leaders.length === 1 && modes.every((x) => x.mode === "leader" || x.mode === "follower") && { leader: leaders[0]!.id, ms: Date.now() - t0 };
      },
      { timeoutMs, intervalMs: 100, show: () => modes },
    );
  }

  /** Stops every member this harness started (by PID) and removes the directory. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m.id, "SIGTERM").catch(() => undefined)));
    if (!this.opts.keepDir && !process.env.TORCA_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}
