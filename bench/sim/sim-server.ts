import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TokenTable } from "../../src/common/auth.js";
import type { Grant } from "../../src/auth/grants.js";
import { NotFoundError, PayloadTooLargeError, toTorcaError, ValidationError } from "../../src/common/errors.js";
import { parseBody, StopRequestSchema, TaskBatchSchema, TaskDispatchSchema, type TaskBatchResult, type TaskDispatch } from "../../src/common/protocol.js";
import type { SimAgent } from "./sim-agent.js";

/**
 * One HTTP server for every simulated agent: agent `<id>` lives under
 * `/sim/<id>`, so its advertised URL is `http://HOST:PORT/sim/<id>` and the
 * dispatcher's `${url}/v1/tasks/...` lands here. Same routes, roles, bodies,
 * status codes and error envelope as the real agent's API (agent/http/api.ts).
 *
 * Plain node:http rather than Koa: at 10,000 machines this process answers
 * every dispatch of the cell, on a machine it shares with the managers, so
 * the simulator's own cost is kept out of the figures as far as possible.
 */

const BODY_LIMIT = 4 * 1024 * 1024;
const ROUTE = /^\/sim\/([^/]+)(\/.*)?$/;

export interface SimServerDeps {
  agent(id: string): SimAgent | undefined;
  tokens: TokenTable;
  /** Counts dispatches and stops for the cell's statistics. */
  onDispatch(created: boolean): void;
  onStop(): void;
}

export class SimServer {
  private readonly server: Server;

  constructor(private readonly deps: SimServerDeps) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 30_000;
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", "http://sim");
      const m = ROUTE.exec(url.pathname);
      const agent = m ? this.deps.agent(decodeURIComponent(m[1]!)) : undefined;
      if (!m || !agent) throw new NotFoundError("simulated agent", m ? decodeURIComponent(m[1]!) : url.pathname);
      const body = await this.route(req, agent, m[2] ?? "/");
      send(res, body.status, body.json);
    } catch (e) {
      const err = toTorcaError(e);
      send(res, err.status, { error: err.toJSON() });
    }
  }

  private async route(req: IncomingMessage, agent: SimAgent, path: string): Promise<{ status: number; json: unknown }> {
    const parts = path.split("/").filter(Boolean);
    const method = req.method ?? "GET";
    if (method === "GET" && path === "/healthz") return { status: 200, json: { ok: true, id: agent.id, simulated: true } };
    if (parts[0] !== "v1") throw new NotFoundError("route", path);
    if (method === "PUT" && parts[1] === "tasks" && parts.length === 3) {
      this.authorize(req, "control");
      const d = parseBody(TaskDispatchSchema, await readJson(req)) as unknown as TaskDispatch;
      if (d.taskId !== decodeURIComponent(parts[2]!)) throw new ValidationError([{ field: "taskId", message: "does not match the URL" }]);
      const created = agent.start(d);
      this.deps.onDispatch(created);
      return { status: created ? 201 : 200, json: { taskId: d.taskId, attempt: d.attempt, state: agent.task(d.taskId)?.state } };
    }
    if (method === "POST" && parts[1] === "tasks" && parts[2] === "batch" && parts.length === 3) {
      this.authorize(req, "control");
      const { tasks } = parseBody(TaskBatchSchema, await readJson(req));
      const results = (tasks as unknown as TaskDispatch[]).map((d): TaskBatchResult => {
        try {
          const created = agent.start(d);
          this.deps.onDispatch(created);
          return { taskId: d.taskId, attempt: d.attempt, created, state: agent.task(d.taskId)?.state };
        } catch (e) {
          const err = toTorcaError(e);
          return { taskId: d.taskId, attempt: d.attempt, error: { status: err.status, ...err.toJSON() } };
        }
      });
      return { status: 200, json: { results } };
    }
    if (method === "POST" && parts[1] === "tasks" && parts[3] === "stop" && parts.length === 4) {
      this.authorize(req, "control");
      const taskId = decodeURIComponent(parts[2]!);
      const stop = parseBody(StopRequestSchema, await readJson(req));
      if (!agent.stop(taskId, stop.attempt, stop.epoch)) throw new NotFoundError("task", taskId);
      this.deps.onStop();
      return { status: 200, json: { taskId, stopping: true } };
    }
    if (method === "GET" && parts[1] === "tasks" && parts.length === 2) {
      this.authorize(req, "read");
      return { status: 200, json: { tasks: agent.report() } };
    }
    if (method === "GET" && parts[1] === "tasks" && parts[3] === "logs" && parts.length === 4) {
      this.authorize(req, "read");
      throw new NotFoundError("logs of simulated task", decodeURIComponent(parts[2]!));
    }
    if (method === "GET" && parts[1] === "status" && parts.length === 2) {
      this.authorize(req, "read");
      return { status: 200, json: { ...agent.ad, simulated: true, tasks: agent.report() } };
    }
    throw new NotFoundError("route", `${method} ${path}`);
  }

  private authorize(req: IncomingMessage, role: Grant): void {
    this.deps.tokens.authorize(req.headers.authorization, role);
  }
}

function send(res: ServerResponse, status: number, json: unknown): void {
  const body = JSON.stringify(json);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > BODY_LIMIT) throw new PayloadTooLargeError(BODY_LIMIT);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ValidationError([{ field: "", message: `request body is not valid JSON: ${(e as Error).message}` }]);
  }
}
