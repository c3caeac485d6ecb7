import { STATUS_CODES, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { requireGrant, type Caller, type Grant } from "../auth/grants.js";
import type { TokenTable } from "../common/auth.js";
import { NotFoundError, NotPrimaryError, toTorcaError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

/**
 * HTTP/1.1 upgrades (101 Switching Protocols) beside a daemon's Koa app, for
 * sessions that must outlive the server's request timeout (torca exec). Koa
 * never sees these requests: the route, the bearer token and the grant are
 * checked here, and a refusal is answered with the same status and
 * `{error: …}` envelope as http/edge.ts gives, so clients read it as any other.
 */
export interface UpgradeRoute {
  /** The `Upgrade:` protocol the route speaks. */
  protocol: string;
  /** The path in the routers' syntax, e.g. /v1/tasks/:id/exec; `:name` segments become `params`. */
  pattern: string;
  grant: Grant;
  /** Owns the socket once protocols switched; ends it when done. May throw before switching (see `accept`). */
  handle(session: UpgradeSession): Promise<void>;
}

export interface UpgradeSession {
  params: Record<string, string>;
  caller: Caller;
  /** The peer's address, for logs and events. */
  from: string;
  headers: IncomingMessage["headers"];
  /** Switches protocols and returns the raw stream; checks that can refuse must come before it. */
  accept(): Duplex;
}

function refuse(socket: Duplex, e: unknown, log: Logger, path: string): void {
  const err = toTorcaError(e);
  const status = err instanceof NotPrimaryError && err.primaryUrl ? 307 : err.status;
  if (status >= 500) log.error({ err: e, code: err.code, path }, "upgrade failed");
  const body = JSON.stringify({ error: err.toJSON() });
  const location = status === 307 && err instanceof NotPrimaryError ? `Location: ${err.primaryUrl!.replace(/\/$/, "")}${path}\r\n` : "";
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${location}Connection: close\r\n\r\n${body}`);
}

/** `/v1/tasks/:id/exec` → a regexp with a named group per `:name` segment. */
export function patternRegExp(pattern: string): RegExp {
  const source = pattern
    .split("/")
    .map((seg) => (seg.startsWith(":") ? `(?<${seg.slice(1)}>[^/]+)` : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}$`);
}

export function serveUpgrades(server: Server, routes: readonly UpgradeRoute[], tokens: TokenTable, log: Logger): void {
  const compiled = routes.map((r) => ({ route: r, path: patternRegExp(r.pattern) }));
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = req.url ?? "/";
    const pathname = path.split("?")[0] ?? "/";
    let switched = false;
    void (async () => {
      const protocol = String(req.headers.upgrade ?? "").toLowerCase();
      const match = compiled.find((c) => c.route.protocol === protocol && c.path.test(pathname));
      if (!match) throw new NotFoundError("endpoint", `${req.method ?? "GET"} ${pathname} (Upgrade: ${protocol || "none"})`);
      const route = match.route;
      const caller = await tokens.identifyFresh(req.headers.authorization);
      requireGrant(caller, route.grant);
      const params = { ...(match.path.exec(pathname)?.groups ?? {}) };
      for (const [k, v] of Object.entries(params)) params[k] = decodeURIComponent(v);
      await route.handle({
        params,
        caller,
        from: req.socket.remoteAddress ?? "",
        headers: req.headers,
        accept: () => {
          switched = true;
          socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${route.protocol}\r\n\r\n`);
          if (head.length > 0) socket.unshift(head);
          return socket;
        },
      });
    })().catch((e: unknown) => {
      if (!switched) return refuse(socket, e, log, path);
      log.warn({ err: e, path }, "upgraded session failed");
      socket.destroy();
    });
  });
}
