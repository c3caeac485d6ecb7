/**
 * When a disconnected ZooKeeper session stops being trusted alive (the
 * primary steps down then), and what counts as a server vouching for it.
 * Time is passed in; the probe is asked of local sockets that behave as a
 * serving, a quorum-less and a silent server do.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { SessionTrust, SUSPECT_AFTER_FRACTION } from "../../src/coord/zk/trust.js";
import { askServer, sessionVerdict } from "../../src/coord/zk-probe.js";

const TIMEOUT = 4000;
const T0 = 1_000_000;
const HALF = SUSPECT_AFTER_FRACTION * TIMEOUT;

describe("a session's trust while disconnected", () => {
  test("a connected session is never suspect", () => {
    const t = new SessionTrust(TIMEOUT);
    assert.equal(t.suspectAt, undefined);
    assert.equal(t.isSuspect(T0 + 10 * TIMEOUT), false);
  });

  test("is kept for half the session timeout after the disconnection, then lost", () => {
    const t = new SessionTrust(TIMEOUT);
    t.disconnected(T0);
    assert.equal(HALF, TIMEOUT / 2);
    assert.equal(t.isSuspect(T0 + HALF - 1), false);
    assert.equal(t.isSuspect(T0 + HALF), true);
  });

  test("counts from the first disconnection, not from later reports of it", () => {
    const t = new SessionTrust(TIMEOUT);
    t.disconnected(T0);
    t.disconnected(T0 + 1500);
    assert.equal(t.suspectAt, T0 + HALF);
  });

  test("is renewed by each server vouching for the session", () => {
    const t = new SessionTrust(TIMEOUT);
    t.disconnected(T0);
    t.vouched(T0 + 1000);
    t.vouched(T0 + 1800);
    assert.equal(t.isSuspect(T0 + 1800 + HALF - 1), false);
    assert.equal(t.isSuspect(T0 + 1800 + HALF), true);
  });

  test("says when the session was last known alive: while connected, now; while disconnected, the latest evidence (what an agent counts as contact with ZooKeeper)", () => {
    const t = new SessionTrust(TIMEOUT);
    assert.equal(t.evidenceSince, undefined);
    t.disconnected(T0);
    assert.equal(t.evidenceSince, T0);
    t.vouched(T0 + 5000);
    assert.equal(t.evidenceSince, T0 + 5000, "a majority with no quorum vouches for it, however long the disconnection");
    t.connected();
    assert.equal(t.evidenceSince, undefined);
  });

  test("an old piece of evidence does not move the limit back", () => {
    const t = new SessionTrust(TIMEOUT);
    t.disconnected(T0);
    t.vouched(T0 + 1800);
    t.vouched(T0 + 500);
    assert.equal(t.suspectAt, T0 + 1800 + HALF);
  });

  test("evidence while connected means nothing for the next disconnection", () => {
    const t = new SessionTrust(TIMEOUT);
    t.vouched(T0 + 5000);
    t.disconnected(T0 + 6000);
    assert.equal(t.suspectAt, T0 + 6000 + HALF);
  });

  test("a reconnection clears the suspicion; the next disconnection starts afresh", () => {
    const t = new SessionTrust(TIMEOUT);
    t.disconnected(T0);
    t.connected();
    assert.equal(t.isSuspect(T0 + 10 * TIMEOUT), false);
    t.disconnected(T0 + 20_000);
    assert.equal(t.suspectAt, T0 + 20_000 + HALF);
  });
});

/** A local server that answers each connection as `behave` says. */
async function fakeServer(behave: (s: Socket) => void): Promise<{ address: string; server: Server }> {
  const server = createServer(behave);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, server };
}

describe("asking servers about a session", () => {
  const CREDS = { clientId: "1234abcd", password: "00".repeat(16) };
  const servers: Server[] = [];
  const held: Socket[] = [];
  after(() => {
    for (const s of held) s.destroy();
    for (const s of servers) s.close();
  });
  const closing = async () => {
    const f = await fakeServer((s) => s.destroy());
    servers.push(f.server);
    return f.address;
  };
  const silent = async () => {
    const f = await fakeServer((s) => void held.push(s));
    servers.push(f.server);
    return f.address;
  };
  const refusing = async () => {
    const f = await fakeServer(() => undefined);
    await new Promise<void>((resolve) => f.server.close(() => resolve()));
    return f.address;
  };

  test("a server that takes the connection and closes it unanswered serves nobody", async () => {
    assert.equal(await askServer(await closing(), CREDS, TIMEOUT, 500), "not-serving");
  });

  test("a refusing server (its process is down) serves nobody either", async () => {
    assert.equal(await askServer(await refusing(), CREDS, TIMEOUT, 500), "not-serving");
  });

  test("a silent server tells nothing (frozen, cut off)", async () => {
    assert.equal(await askServer(await silent(), CREDS, TIMEOUT, 200), "unknown");
  });

  test("a majority serving nobody is no quorum: nothing can expire the session", async () => {
    assert.deepEqual(await sessionVerdict([await closing(), await closing(), await silent()], CREDS, TIMEOUT, 200), { verdict: "no-quorum" });
  });

  test("a majority down is no quorum too (the whole ensemble restarting, two servers of three lost)", async () => {
    assert.deepEqual(await sessionVerdict([await refusing(), await refusing(), await closing()], CREDS, TIMEOUT, 200), { verdict: "no-quorum" });
  });

  test("a minority serving nobody is no evidence", async () => {
    assert.deepEqual(await sessionVerdict([await closing(), await silent(), await silent()], CREDS, TIMEOUT, 200), { verdict: "unknown" });
  });
});
