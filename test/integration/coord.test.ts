import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startZooKeeper, type ZooKeeperServer } from "../../src/cell/zookeeper-server.js";
import { CoordinationError } from "../../src/common/errors.js";
import { IntegrityError } from "../../src/common/errors.js";
import { Election, readLeader, type LeaderInfo } from "../../src/coord/election.js";
import { SessionKeeper, type SessionEnd } from "../../src/coord/session-keeper.js";
import { ZkStateStore } from "../../src/coord/state-store.js";
import { ZK, ZkSession, type SessionCredentials } from "../../src/coord/zk.js";
import { Collector } from "../../src/manager/collector/collector.js";
import { until } from "../harness/wait.js";

/** A process that keeps a session, stops its keeper, says what it holds, and lives on until it is killed. */
const HOLDER_SCRIPT = `
const { SessionKeeper } = await import(process.argv[1]);
const lost = [];
const keeper = new SessionKeeper({ onSession: async () => {}, onSessionLost: (_zk, why) => lost.push(why) }, { connect: process.argv[2], sessionTimeoutMs: 2000 });
await keeper.start();
const held = keeper.session;
keeper.stop();
await new Promise((resolve) => setTimeout(resolve, 200));
process.stdout.write(JSON.stringify({ alive: held.isAlive, sessionId: held.sessionId, credentials: held.credentials, lost }) + "\\n");
setInterval(() => {}, 60_000);
`;

/** A process that starts a ZooKeeper server, says its pid, and lives on until it is killed. */
const SERVER_OWNER_SCRIPT = `
const { startZooKeeper } = await import(process.argv[1]);
const zk = await startZooKeeper({ dataDir: process.argv[2], tickTimeMs: 1000 });
process.stdout.write(JSON.stringify({ pid: zk.pid }) + "\\n");
setInterval(() => {}, 60_000);
`;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Awaits with a deadline, so a missing event fails the test instead of hanging the suite. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))) ]).finally(() => clearTimeout(t));
}

describe("coordination layer on a real ZooKeeper", () => {
  let zk: ZooKeeperServer;
  const dir = mkdtempSync(join(tmpdir(), "torca-coord-"));
  const sessions: ZkSession[] = [];
  const open = async () => {
    const s = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 2000 });
    sessions.push(s);
    return s;
  };
  before(async () => {
    zk = await startZooKeeper({ dataDir: join(dir, "zk"), tickTimeMs: 1000 });
  });
  after(async () => {
    try {
      for (const s of sessions) s.close();
    } finally {
      // The server and its directory go even when closing a session throws.
      await zk?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a ZooKeeper server ends with the process that started it, even one that is SIGKILLed", async () => {
    const owner = spawn(process.execPath, ["--input-type=module", "-e", SERVER_OWNER_SCRIPT, new URL("../../src/cell/zookeeper-server.js", import.meta.url).href, join(dir, "owned-zk")], { stdio: ["ignore", "pipe", "inherit"] });
    let serverPid: number | undefined;
    try {
      const [line] = (await within(once(createInterface({ input: owner.stdout! }), "line"), 60_000, "the owner's server starting")) as [string];
      serverPid = (JSON.parse(line) as { pid: number }).pid;
      assert.ok(isRunning(serverPid));
      owner.kill("SIGKILL");
      await until("the server to end with its owner", () => !isRunning(serverPid!), { timeoutMs: 10_000 });
    } finally {
      if (owner.exitCode === null && owner.signalCode === null) owner.kill("SIGKILL");
      if (serverPid !== undefined && isRunning(serverPid)) process.kill(serverPid, "SIGKILL");
    }
  });

  test("versioned set is a compare-and-set: a stale version is refused", async () => {
    const s = await open();
    await s.ensurePath("/t/cas");
    const st = await s.set("/t/cas", "a", 0);
    assert.equal(st.version, 1);
    await assert.rejects(s.set("/t/cas", "b", 0), (e: unknown) => e instanceof CoordinationError && e.zkCode === ZK.BADVERSION);
    assert.equal((await s.get("/t/cas")).data.toString(), "a");
  });

  test("ephemeral nodes vanish with their session, and watchers hear it", async () => {
    const a = await open();
    const b = await open();
    await a.ensurePath("/t/eph");
    await a.create("/t/eph/node", "x", "ephemeral");
    let heard!: (ev: string) => void;
    const gone = new Promise<string>((r) => (heard = r));
    assert.ok(await b.exists("/t/eph/node", (ev) => heard(ev)), "the watch is armed on the live node before its owner goes");
    a.close();
    assert.equal(await within(gone, 10_000, "the deletion watch"), "deleted");
    assert.equal(await b.exists("/t/eph/node"), undefined);
  });

  test("election: one primary at a time, the next takes over when it goes, and the epoch rises", async () => {
    const s1 = await open();
    const s2 = await open();
    const e1 = new Election(s1, "/t/cell", { id: "m1", url: "http://127.0.0.1:1" });
    const e2 = new Election(s2, "/t/cell", { id: "m2", url: "http://127.0.0.1:2" });
    const first = new Promise<LeaderInfo>((r) => e1.once("elected", r));
    await e1.start();
    await e2.start();
    const l1 = await within(first, 10_000, "the first election");
    assert.equal(l1.id, "m1");
    assert.equal(e2.isPrimary, false);
    const second = new Promise<LeaderInfo>((r) => e2.once("elected", r));
    const deposed = new Promise<void>((r) => e1.once("deposed", () => r()));
    s1.close();
    await within(deposed, 10_000, "deposition");
    const l2 = await within(second, 10_000, "the takeover");
    assert.equal(l2.id, "m2");
    assert.ok(l2.epoch > l1.epoch);
    assert.equal(JSON.parse((await s2.get("/t/cell/leader")).data.toString()).id, "m2");
  });

  test("a job whose creation was cut short (job node written, tasks node not) still gets its tasks written", async () => {
    // What a primary killed between the two creates of createJob leaves behind.
    const s = await open();
    await s.ensurePath("/t/cut/jobs");
    const job = { id: "cut", spec: {}, source: "", status: "pending", desired: "run", submittedAt: 1, updatedAt: 1 };
    await s.create("/t/cut/jobs/cut", JSON.stringify(job));
    const store = new ZkStateStore(s, "/t/cut");
    await store.start();
    await store.becomeAuthoritative();
    assert.ok(store.jobs.has("cut"));
    const task = { id: "cut/0", jobId: "cut", index: 0, run: 0, desired: "run", state: "pending", attempt: 0, restartsOnNode: 0, migrations: 0, createdAt: 1, updatedAt: 1, events: [] } as const;
    await store.putTask({ ...task, events: [] });
    assert.deepEqual(JSON.parse((await s.get("/t/cut/jobs/cut/tasks/c0")).data.toString()).map((t: { id: string }) => t.id), ["cut/0"], "the record is in its chunk");
    assert.equal(store.task("cut", 0)?.id, "cut/0");
  });

  test("operations on a closed session fail instead of silently using a new one", async () => {
    const s = await open();
    s.close();
    assert.equal(s.isAlive, false);
    await assert.rejects(s.get("/t"), CoordinationError);
  });

  describe("corrupt znodes are read at the border", () => {
    test("a leader znode of another shape fails the read, naming the path and the field", async () => {
      const s = await open();
      await s.ensurePath("/t/corrupt");
      await s.create("/t/corrupt/leader", JSON.stringify({ id: "m1", url: "http://m1", epoch: "seven", since: 1 }), "ephemeral");
      await assert.rejects(readLeader(s, "/t/corrupt"), (e: unknown) => e instanceof IntegrityError && e.message.startsWith("/t/corrupt/leader: epoch"));
    });

    test("the collector skips a malformed agent ad and reads the others", async () => {
      const s = await open();
      await s.ensurePath("/t/ads/agents");
      const ad = { id: "good", url: "http://127.0.0.1:1", host: "127.0.0.1", capacity: { cpu: 1, memory: 1, disk: 1 }, allocatable: { cpu: 1, memory: 1, disk: 1 }, attributes: {}, portRange: [1, 2], drivers: { lxc: false, process: true }, startedAt: 1 };
      await s.create("/t/ads/agents/good", JSON.stringify(ad), "ephemeral");
      await s.create("/t/ads/agents/bad", "{ not json", "ephemeral");
      await s.create("/t/ads/agents/foreign", JSON.stringify({ drain: true }), "ephemeral");
      const collector = new Collector(s, "/t/ads");
      try {
        await collector.start();
        await until("the good ad to be read", () => collector.node("good"));
        assert.deepEqual(collector.nodes().map((n) => n.id), ["good"]);
      } finally {
        collector.close();
      }
    });
  });

  describe("session keeper", () => {
    /** An owner that records what it was handed and told. */
    function owner(failFirstSetUps = 0) {
      const o = {
        sessions: [] as ZkSession[],
        lost: [] as [string, SessionEnd][],
        setUpFailures: failFirstSetUps,
        async onSession(zk: ZkSession) {
          o.sessions.push(zk);
          sessions.push(zk);
          if (o.setUpFailures-- > 0) throw new Error("set-up refused");
          await zk.ensurePath("/t/keeper");
        },
        onSessionLost(zk: ZkSession, why: SessionEnd) {
          o.lost.push([zk.sessionId, why]);
        },
      };
      return o;
    }

    /** Expires a session from outside: attach to it and close it (repeated while its own client wins it back). */
    async function expire(creds: SessionCredentials, gone: () => boolean): Promise<void> {
      await until(
        "the session to expire",
        async () => {
          if (gone()) return true;
          const killer = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 2000, resume: creds }).catch(() => undefined);
          killer?.close();
          return gone();
        },
        { timeoutMs: 20_000, intervalMs: 500 },
      );
    }

    /** Runs `body` with a keeper (2 s sessions, retries after 100 ms) for owner `o`; the keeper and its session end whatever happens. */
    async function withKeeper(o: ReturnType<typeof owner>, body: (keeper: SessionKeeper) => Promise<void>): Promise<void> {
      const keeper = new SessionKeeper(o, { connect: zk.connectString, sessionTimeoutMs: 2000, retryDelayMs: 100 });
      try {
        await body(keeper);
      } finally {
        keeper.stop();
        keeper.session?.close();
      }
    }

    /** The second session the keeper handed `o`, once it is up. */
    const secondSession = (o: ReturnType<typeof owner>, keeper: SessionKeeper) => until("a new session", () => (o.sessions.length === 2 && keeper.session?.isAlive ? keeper.session : undefined));

    test("an expired session is reported to its owner before a new one is handed over", async () => {
      const o = owner();
      await withKeeper(o, async (keeper) => {
        await keeper.start();
        await keeper.live();
        const first = keeper.session!;
        assert.deepEqual(o.sessions, [first]);
        await expire(first.credentials, () => !first.isAlive);
        const second = await secondSession(o, keeper);
        assert.notEqual(second.sessionId, first.sessionId);
        assert.deepEqual(o.lost, [[first.sessionId, "expired"]]);
      });
    });

    test("a failed set-up closes that session and tries again on a new one", async () => {
      const o = owner(1);
      await withKeeper(o, async (keeper) => {
        await keeper.start();
        assert.equal(keeper.session, undefined, "the first attempt's session is not kept");
        await keeper.live();
        assert.equal(o.sessions.length, 2);
        assert.equal(o.sessions[0]!.isAlive, false);
        assert.equal(keeper.session, o.sessions[1]);
        assert.deepEqual(o.lost, [], "a session the keeper closed itself is no loss");
      });
    });

    test("a session its owner abandons is closed, reported as abandoned, and followed by a new one", async () => {
      const o = owner();
      await withKeeper(o, async (keeper) => {
        await keeper.start();
        await keeper.live();
        const first = keeper.session!;
        keeper.abandon(first);
        assert.equal(first.isAlive, false, "the abandoned session is closed at once");
        const second = await secondSession(o, keeper);
        assert.notEqual(second.sessionId, first.sessionId);
        assert.deepEqual(o.lost, [[first.sessionId, "abandoned"]]);
        keeper.abandon(first);
        assert.equal(keeper.session, second, "abandoning a session no longer kept changes nothing");
      });
    });

    test("stop() leaves the session to its owner, and resume() attaches to it again", async () => {
      // The owner is a process of its own that dies, as an agent restarting does: two live holders of one
      // session in one process would take it from each other over and over (each resumption moves it).
      const holder = spawn(process.execPath, ["--input-type=module", "-e", HOLDER_SCRIPT, new URL("../../src/coord/session-keeper.js", import.meta.url).href, zk.connectString], { stdio: ["ignore", "pipe", "inherit"] });
      try {
        const [line] = (await once(createInterface({ input: holder.stdout! }), "line")) as [string];
        const held = JSON.parse(line) as { alive: boolean; sessionId: string; credentials: SessionCredentials; lost: string[] };
        assert.equal(held.alive, true, "stopping the keeper does not close the session");
        holder.kill("SIGKILL");
        await once(holder, "exit");
        const next = owner();
        const successor = new SessionKeeper(next, { connect: zk.connectString, sessionTimeoutMs: 2000, resume: () => held.credentials });
        try {
          await successor.start();
          assert.equal(successor.session?.sessionId, held.sessionId, "the next keeper resumed the same session");
          assert.deepEqual([...held.lost, ...next.lost], [], "losses after stop() are not reported");
        } finally {
          successor.stop();
          successor.session?.close();
        }
      } finally {
        if (holder.exitCode === null && holder.signalCode === null) holder.kill("SIGKILL");
      }
    });
  });
});
