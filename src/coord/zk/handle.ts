import { accepts, serversOf } from "../zk-probe.js";
import { NATIVE_CONNECTED, ZooKeeper, type NativeClient, type SessionCredentials } from "./native.js";

/** The largest limit the binding's int32 counter can be compared with: it never exceeds it. */
const NEVER = 2 ** 31 - 1;

/** The chroot suffix of a connect string ("" when there is none). */
function chrootOf(connect: string): string {
  return connect.includes("/") ? connect.slice(connect.indexOf("/")) : "";
}

/** Servers that accept connections first (in random order), refusing ones last: the C client tries them in this order. */
export async function orderedServers(connect: string, first?: string): Promise<string> {
  const servers = serversOf(connect);
  const up = await Promise.all(servers.map((s) => accepts(s)));
  const rank = (s: string, i: number) => (s === first ? 0 : up[i] ? 1 : 2);
  const order = servers.map((s, i) => ({ s, r: rank(s, i), k: Math.random() })).sort((a, b) => a.r - b.r || a.k - b.k);
  return order.map((x) => x.s).join(",") + chrootOf(connect);
}

/** The connect string with `first` moved to the front (the server that just accepted our session). */
export function firstThen(connect: string, first: string | undefined): string {
  const servers = serversOf(connect);
  return [...servers.filter((s) => s === first), ...servers.filter((s) => s !== first)].join(",") + chrootOf(connect);
}

/**
 * A native handle connected to a (new or resumed) session, authenticating
 * with `credential` (digest "user:password") when one is given; undefined
 * when it closed first (or `limitMs` passed). Authentication belongs to the
 * handle, not the session: every new handle on a session is given it here.
 */
export function openHandle(connect: string, sessionTimeoutMs: number, resume: SessionCredentials | undefined, limitMs: number, credential?: string): Promise<NativeClient | undefined> {
  const client = new ZooKeeper({
    connect,
    timeout: sessionTimeoutMs,
    debug_level: ZooKeeper.ZOO_LOG_LEVEL_ERROR,
    // Our order (orderedServers): servers known to refuse are tried last.
    host_order_deterministic: true,
    // The binding's poll callback closes the handle as if the session had expired once the C client's
    // reads come back empty this many times in a row, never counting errors as a break: that is what
    // a reconnection after a server died looks like, so live sessions were declared expired. The C
    // client reports a real expiry itself, from a server's answer; so the counter must never trip.
    response_counter_limit: NEVER,
    ...(resume ? { client_id: resume.clientId, client_password: resume.password } : {}),
  });
  client.data_as_buffer = true;
  return new Promise((resolve) => {
    const done = (c: NativeClient | undefined) => {
      clearTimeout(timer);
      client.removeListener("connect", onConnect);
      client.removeListener("close", onClose);
      resolve(c);
    };
    const onConnect = () => done(client);
    const onClose = () => done(undefined);
    const timer = setTimeout(() => {
      // Still connecting, so closing sends nothing that could end the session.
      if (client.state !== NATIVE_CONNECTED) {
        try {
          client.close();
        } catch {
          /* already closed */
        }
      }
      done(client.state === NATIVE_CONNECTED ? client : undefined);
    }, limitMs);
    client.on("connect", onConnect);
    client.on("close", onClose);
    client.init({});
    // The C client sends the credential ahead of any request once connected, and again after each reconnect
    // of this handle; the server applies it on receipt, so every operation on the handle is authenticated.
    // The digest scheme accepts any well-formed "user:password" (the config schema checks the form); a refusal
    // closes the connection, which the handle reports as "close".
    if (credential !== undefined) client.native.add_auth("digest", credential, () => undefined);
  });
}
