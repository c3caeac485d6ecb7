import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { isIP } from "node:net";
import { parseListen, type Config } from "../common/config.js";
import { ConfigError } from "../common/errors.js";

/**
 * How a daemon serves HTTP: HTTPS with its own certificate when the config
 * gives `cluster.tls`, plain HTTP otherwise, but plain HTTP beyond loopback
 * only when the config says `cluster.insecure: true`. Clients verify the
 * server against the cell CA (`cluster.tls.ca`, common/http.ts); a client
 * without it refuses the connection. Who proves what to whom: docs/security.md.
 */

export type DaemonRole = "manager" | "agent";

export type ServingTls = { scheme: "http" } | { scheme: "https"; cert: Buffer; key: Buffer };

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h === "::1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice("::ffff:".length) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError(`cannot read ${key} ${path}: ${(e as Error).message}`, key);
  }
}

/** The cell CA clients verify daemons against; undefined when the cell runs plain HTTP. */
export function cellCaOf(cluster: Config["cluster"]): Buffer | undefined {
  return cluster.tls ? readPem(cluster.tls.ca, "cluster.tls.ca") : undefined;
}

/**
 * What the daemon at `<role>.listen` serves with; throws before anything
 * listens when that is plain HTTP beyond loopback without `cluster.insecure`.
 */
export function servingTls(config: Config, role: DaemonRole): ServingTls {
  const listen = config[role].listen;
  const tls = config.cluster.tls;
  if (!tls) {
    const { host } = parseListen(listen);
    if (!isLoopback(host) && !config.cluster.insecure) {
      throw new ConfigError(
        `${role}.listen is ${listen}, beyond loopback, and cluster.tls is not set: give this daemon certificates (cluster.tls: {ca, cert, key}) or set cluster.insecure: true to serve plain HTTP there`,
        "cluster.tls",
      );
    }
    return { scheme: "http" };
  }
  if (!tls.cert || !tls.key) throw new ConfigError(`cluster.tls needs cert and key on a ${role} (the daemon's own certificate and key)`, "cluster.tls");
  return { scheme: "https", cert: readPem(tls.cert, "cluster.tls.cert"), key: readPem(tls.key, "cluster.tls.key") };
}

/** The URL a daemon is reached at: its advertised one, or its listen address with the scheme it serves. */
export function daemonUrl(listen: string, advertiseUrl: string | undefined, tls: ServingTls): string {
  if (advertiseUrl) return advertiseUrl;
  const { host, port } = parseListen(listen);
  return `${tls.scheme}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** Serves `handler` at `listen` (host:port); resolves once listening. */
export async function listenDaemon(handler: RequestListener, listen: string, tls: ServingTls): Promise<Server> {
  // The chain is the certificate alone: clients hold the CA (sending it would prove nothing).
  const server = tls.scheme === "https" ? createHttpsServer({ cert: tls.cert, key: tls.key, minVersion: "TLSv1.2" }, handler) : createHttpServer(handler);
  const { host, port } = parseListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
