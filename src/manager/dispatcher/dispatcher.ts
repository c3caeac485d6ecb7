import type { Got } from "got";
import { createHttpClient, httpErrorToTorca } from "../../common/http.js";
import type { Logger } from "../../common/logger.js";
import type { SignalRequest, StopRequest, TaskDispatch } from "../../common/protocol.js";

/**
 * Sends task descriptions and stop orders to the agents.
 * Both are idempotent on the agent by (task, attempt), so retries are safe.
 * Every message carries the primary's epoch: an agent that has seen a higher
 * epoch refuses it, which fences off a deposed primary.
 */
export interface Dispatcher {
  start(nodeUrl: string, d: TaskDispatch): Promise<void>;
  stop(nodeUrl: string, taskId: string, req: StopRequest): Promise<void>;
  signal(nodeUrl: string, taskId: string, req: SignalRequest): Promise<void>;
}

export class HttpDispatcher implements Dispatcher {
  private readonly http: Got;

  /** `ca`: the cell CA agents' certificates are verified against (a cell on TLS); `localAddress`: the manager's own address. */
  constructor(token: string, private readonly log?: Logger, opts: { ca?: Buffer; localAddress?: string } = {}) {
    this.http = createHttpClient({ token, timeoutMs: 5000, retries: 2, ...opts });
  }

  async start(nodeUrl: string, d: TaskDispatch): Promise<void> {
    try {
      // PUT: idempotent by (task, attempt), so got may retry it.
      await this.http.put(`${nodeUrl}/v1/tasks/${encodeURIComponent(d.taskId)}`, { json: d });
    } catch (e) {
      throw httpErrorToTorca(e, `dispatch ${d.taskId}#${d.attempt} to ${nodeUrl}`);
    }
    this.log?.debug({ task: d.taskId, attempt: d.attempt, node: nodeUrl }, "dispatched");
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
