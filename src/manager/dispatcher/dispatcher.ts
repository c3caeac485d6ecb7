import type { Got } from "got";
import { MethodNotAllowedError, NotFoundError, UnavailableError } from "../../common/errors.js";
import { createHttpClient, httpErrorToTorca } from "../../common/http.js";
import type { Logger } from "../../common/logger.js";
import { parseBody, TaskBatchReplySchema, type SignalRequest, type StopRequest, type TaskBatchResult, type TaskDispatch } from "../../common/protocol.js";

/**
 * Sends task descriptions and stop orders to the agents.
 * Both are idempotent on the agent by (task, attempt), so retries are safe.
 * Every message carries the primary's epoch: an agent that has seen a higher
 * epoch refuses it, which fences off a deposed primary.
 */
export interface Dispatcher {
  /**
   * Start orders for one agent, in one request: each answered on its own, in
   * order (a refusal carries the agent's typed error). Rejects when the
   * request as a whole failed; an order sent alone (a single one, or to an
   * agent without the batch route) is answered with its error, whatever it was.
   */
  start(nodeUrl: string, ds: readonly TaskDispatch[]): Promise<TaskBatchResult[]>;
  stop(nodeUrl: string, taskId: string, req: StopRequest): Promise<void>;
  signal(nodeUrl: string, taskId: string, req: SignalRequest): Promise<void>;
}

export class HttpDispatcher implements Dispatcher {
  private readonly http: Got;
  /** Agents that answered the batch route with 404/405 (older builds): each order goes to them alone (PUT). */
  private readonly withoutBatch = new Set<string>();

  /** `ca`: the cell CA agents' certificates are verified against (a cell on TLS); `localAddress`: the manager's own address. */
  constructor(token: string, private readonly log?: Logger, opts: { ca?: Buffer; localAddress?: string } = {}) {
    this.http = createHttpClient({ token, timeoutMs: 5000, retries: 2, ...opts });
  }

  async start(nodeUrl: string, ds: readonly TaskDispatch[]): Promise<TaskBatchResult[]> {
    if (ds.length === 1 || this.withoutBatch.has(nodeUrl)) return Promise.all(ds.map((d) => this.startOne(nodeUrl, d)));
    let reply: unknown;
    try {
      // Idempotent by (task, attempt) like PUT, so got may retry it.
      reply = await this.http.post(`${nodeUrl}/v1/tasks/batch`, { json: { tasks: ds }, retry: { limit: 2, methods: ["POST"] } }).json();
    } catch (e) {
      const err = httpErrorToTorca(e, `dispatch ${ds.length} tasks to ${nodeUrl}`);
      if (!(err instanceof NotFoundError || err instanceof MethodNotAllowedError)) throw err;
      this.withoutBatch.add(nodeUrl);
      return this.start(nodeUrl, ds);
    }
    const { results } = parseBody(TaskBatchReplySchema, reply);
    if (results.length !== ds.length || results.some((r, i) => r.taskId !== ds[i]!.taskId)) throw new UnavailableError(`dispatch ${ds.length} tasks to ${nodeUrl}: the answer does not match the orders`);
    this.log?.debug({ tasks: ds.length, node: nodeUrl }, "dispatched");
    return results;
  }

  /** One order alone (PUT /v1/tasks/:id), answered as in a batch. */
  private async startOne(nodeUrl: string, d: TaskDispatch): Promise<TaskBatchResult> {
    try {
      // PUT: idempotent by (task, attempt), so got may retry it.
      const res = await this.http.put(`${nodeUrl}/v1/tasks/${encodeURIComponent(d.taskId)}`, { json: d });
      this.log?.debug({ task: d.taskId, attempt: d.attempt, node: nodeUrl }, "dispatched");
      return { taskId: d.taskId, attempt: d.attempt, created: res.statusCode === 201 };
    } catch (e) {
      const err = httpErrorToTorca(e, `dispatch ${d.taskId}#${d.attempt} to ${nodeUrl}`);
      return { taskId: d.taskId, attempt: d.attempt, error: { status: err.status, ...err.toJSON() } };
    }
  }

  async stop(nodeUrl: string, taskId: string, req: StopRequest): Promise<void> {
    try {
      await this.http.post(`${nodeUrl}/v1/tasks/${encodeURIComponent(taskId)}/stop`, { json: req, retry: { limit: 2, methods: ["POST"] } });
    } catch (e) {
      throw httpErrorToTorca(e, `stop ${taskId} on ${nodeUrl}`);
    }
  }

  async signal(nodeUrl: string, taskId: string, req: SignalRequest): Promise<void> {
    try {
      await this.http.post(`${nodeUrl}/v1/tasks/${encodeURIComponent(taskId)}/signal`, { json: req });
    } catch (e) {
      throw httpErrorToTorca(e, `${req.signal} to ${taskId} on ${nodeUrl}`);
    }
  }
}
