import { connect } from "node:net";

/**
 * Asking ZooKeeper servers directly, over their client protocol, what the
 * native client cannot tell us reliably: whether a session is still alive,
 * and which servers take connections at all.
 *
 * Why: a process resuming an earlier session (an agent restarted within its
 * session timeout, zk/session.ts connectHandle) learns in one round trip
 * whether that session still lives, and from which server; and a session
 * whose handle lost its connection is renewed by the answer (a server that
 * accepts a connect request for a session renews it, as any reconnection
 * does) while it waits for a fresh handle, which is opened only once a server
 * keeps the session (zk/session.ts reattach).
 * A server answers a connect request for a live
 * session with the session's id, and for a gone one with 0 and a zero timeout.
 */

/** "no-quorum": no server keeps sessions (a majority are down or serve nobody), so none can expire. */
export type SessionVerdict = "alive" | "expired" | "no-quorum" | "unknown";

/** One server's answer: as a verdict, or "not-serving" (it refused the connection, or took it and closed it unanswered: it is in no quorum). */
export type ServerAnswer = "alive" | "expired" | "not-serving" | "unknown";

export interface ProbeCredentials {
  /** Session id as the binding prints it: hex without 0x. */
  clientId: string;
  /** 16-byte password as 32 hex digits. */
  password: string;
}

/** host:port entries of a connect string ("h1:p1,h2:p2/chroot"). */
export function serversOf(connectString: string): string[] {
  const hosts = connectString.split("/")[0] ?? "";
  return hosts.split(",").map((h) => h.trim()).filter(Boolean);
}

function splitHostPort(hostPort: string): { host: string; port: number } {
  const i = hostPort.lastIndexOf(":");
  return { host: hostPort.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(hostPort.slice(i + 1)) };
}

/** The ConnectRequest of ZooKeeper's client protocol (jute), length-prefixed. */
function connectRequest(creds: ProbeCredentials, sessionTimeoutMs: number): Buffer {
  const body = Buffer.alloc(45);
  let o = body.writeInt32BE(0, 0); // protocol version
  o = body.writeBigInt64BE(0n, o); // last zxid seen: 0 is never refused as "ahead of the server"
  o = body.writeInt32BE(sessionTimeoutMs, o);
  o = body.writeBigInt64BE(BigInt.asIntN(64, BigInt(`0x${creds.clientId}`)), o);
  o = body.writeInt32BE(16, o);
  o += Buffer.from(creds.password, "hex").copy(body, o, 0, 16);
  body.writeUInt8(0, o); // not read-only
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

/**
 * One server's verdict on a session. "alive": the server accepted it (the
 * session now has this probe's connection, closed right after, which the
 * session survives like any reconnect). "expired": the server answered with
 * no session. "not-serving": it refused the connection (its process is down)
 * or took it and closed it without an answer (a server outside any quorum
 * does). "unknown": no answer at all (cut off, frozen, overloaded).
 *
 * A firewall that rejects with a reset looks like a dead server: a process
 * cut off that way from every server counts them as in no quorum and keeps
 * trusting its session (it still cannot write, and agents fence its epoch).
 */
export function askServer(hostPort: string, creds: ProbeCredentials, sessionTimeoutMs: number, timeoutMs = 1500): Promise<ServerAnswer> {
  const { host, port } = splitHostPort(hostPort);
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    let connected = false;
    const sock = connect({ host, port }, () => {
      connected = true;
      sock.write(connectRequest(creds, sessionTimeoutMs));
    });
    const done = (v: ServerAnswer) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done("unknown"), timeoutMs);
    sock.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4 || got.length < 4 + got.readInt32BE(0)) return;
      // ConnectResponse: protocol version, timeout, session id, password.
      const timeout = got.readInt32BE(8);
      const id = BigInt.asUintN(64, got.readBigInt64BE(12));
      done(timeout > 0 && id === BigInt(`0x${creds.clientId}`) ? "alive" : "expired");
    });
    sock.on("error", (e: NodeJS.ErrnoException) => done(connected || e.code === "ECONNREFUSED" ? "not-serving" : "unknown"));
    sock.on("close", () => done(connected ? "not-serving" : "unknown"));
  });
}

/**
 * The session's fate per the first server that can tell, asked one at a time
 * in random order. Never in parallel: every server that answers "alive" has
 * taken the session over, and one answering after the session's handle has
 * reconnected elsewhere would move the session away from it. Without an
 * answer on the session, "no-quorum" when more than half the servers took
 * the connection but serve nobody.
 */
export async function sessionVerdict(servers: string[], creds: ProbeCredentials, sessionTimeoutMs: number, perServerMs = 1500): Promise<{ verdict: SessionVerdict; server?: string }> {
  const order = servers.map((s) => ({ s, k: Math.random() })).sort((a, b) => a.k - b.k);
  let notServing = 0;
  for (const { s } of order) {
    const answer = await askServer(s, creds, sessionTimeoutMs, perServerMs);
    if (answer === "alive" || answer === "expired") return { verdict: answer, server: s };
    if (answer === "not-serving") notServing++;
  }
  return { verdict: notServing > servers.length / 2 ? "no-quorum" : "unknown" };
}

/** Whether a TCP connection to the server is accepted (a killed server refuses at once). */
export function accepts(hostPort: string, timeoutMs = 300): Promise<boolean> {
  const { host, port } = splitHostPort(hostPort);
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on("connect", () => done(true));
    sock.on("error", () => done(false));
  });
}
