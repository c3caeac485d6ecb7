import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { askServer, serversOf } from "../../src/coord/zk-probe.js";
import { ZkSession } from "../../src/coord/zk.js";
import { createLogger } from "../../src/common/logger.js";
import { TestEnsemble } from "../harness/ensemble.js";
import { never, until } from "../harness/wait.js";

/**
 * The ZooKeeper client layer against a real 3-server ensemble: a multi-host
 * connect string, sessions and watches that outlive the death of servers,
 * and the direct session probe that decides expiry and renews a session
 * while its handle reconnects (src/coord/zk-probe.ts).
 */

const skip = zookeeperInstalled() ? false : "ZooKeeper is not installed";

describe("ZooKeeper sessions on a 3-server ensemble", { skip, timeout: 180_000 }, () => {
  let ens: TestEnsemble;
  const log = createLogger("zk-ensemble-test");
  const sessions: ZkSession[] = [];
  const open = async (timeoutMs = 2000) => {
    const s = await ZkSession.connect({ connect: ens.connectString, sessionTimeoutMs: timeoutMs, logger: log });
    sessions.push(s);
    return s;
  };

  before(async () => {
    ens = await TestEnsemble.start({ tickTimeMs: 1000 });
  });
  after(async () => {
    for (const s of sessions) s.close();
    await ens?.close();
  });

  test("a server says whether a session lives: alive while it does, expired once closed, in no quorum when the server is down", async () => {
    const s = await open();
    const [first] = serversOf(ens.connectString);
    assert.equal(await askServer(first!, s.credentials, 2000), "alive");
    // The probe took the session's connection over; the client reconnects by itself.
    await until("the client to reconnect", () => s.isConnected, { timeoutMs: 10_000 });
    const creds = s.credentials;
    s.close(); // connected: the close ends the session
    await until("the server to report the closed session expired", async () => (await askServer(first!, creds, 2000)) === "expired");
    assert.equal(await askServer("127.0.0.1:1", creds, 2000), "not-serving");
  });

  test("sessions and their watches outlive the loss of two servers in turn (the leader first), and the session is the same", async () => {
    const writer = await open(10_000);
    await writer.ensurePath("/t/watched");
    // Two sessions per process, as a manager has (its term's and the name resolver's).
    const sessionsUnderTest = await Promise.all(Array.from({ length: 2 }, () => open()));
    const ids = sessionsUnderTest.map((s) => s.sessionId);
    let expired = 0;
    for (const s of sessionsUnderTest) s.on("expired", () => expired++);
    const fired: string[][] = sessionsUnderTest.map(() => []);
    // One pending data watch per session, armed before the faults.
    await Promise.all(sessionsUnderTest.map((s, i) => s.get("/t/watched", (ev) => fired[i]!.push(ev))));

    const leader = (await ens.leaderId())!;
    for (const victim of [leader, ens.members.find((m) => m.id !== leader)!.id]) {
      await ens.kill(victim, "SIGKILL");
      await ens.waitQuorum();
      for (const s of sessionsUnderTest) {
        await until("the session reconnected (or ended)", () => s.isConnected || !s.isAlive, { timeoutMs: 20_000 });
      }
      await ens.restart(victim);
      await ens.waitQuorum();
    }
    assert.equal(expired, 0, "no session expired");
    assert.deepEqual(sessionsUnderTest.map((s) => s.sessionId), ids);
    assert.ok(sessionsUnderTest.every((s) => s.isConnected));
    assert.ok(fired.every((f) => f.length === 0), "nothing changed yet, so no watch fired");

    // The watches armed before the faults still fire, once (written once the writer's own session is back).
    await until("the writer to reconnect", () => writer.isConnected, { timeoutMs: 20_000 });
    await writer.set("/t/watched", "changed");
    await until("every session's watch to fire", () => fired.every((f) => f.length > 0), { timeoutMs: 10_000, show: () => fired });
    await never("a watch firing twice", () => fired.some((f) => f.length > 1), 300);
    assert.deepEqual(fired, sessionsUnderTest.map(() => ["changed"]));
  });
});
