import { HTTPError, RequestError, type Got } from "got";
import { MethodNotAllowedError, NotFoundError, TorcaError, UnavailableError } from "../../common/errors.js";
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

/** Connection errors raised before a byte of the request was sent. */
const NEVER_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH", "ERR_INVALID_URL"]);

/** Start requests that failed after one of their tries went out unanswered. */
const ARRIVAL_UNKNOWN = new WeakSet<object>();

/**
 * Whether a failed start request may still have reached the agent: one of
 * its tries went out and got no answer (a timeout, a reset connection). The
 * agent may then be running the orders, so they must not be given to another
 * attempt. An answer (any status) to every try, or connections never made,
 * is a certain refusal.
 */
export function orderMayHaveArrived(e: unknown): boolean {
  return typeof e === "object" && e !== null && ARRIVAL_UNKNOWN.has(e);
}

/** Whether a try went out and its answer was lost. */
function unanswered(e: RequestError): boolean {
  return !(e instanceof HTTPError) && !NEVER_SENT.has(e.code);
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
      reply = await this.tracked(`dispatch ${ds.length} tasks to ${nodeUrl}`, (hooks) => this.http.post(`${nodeUrl}/v1/tasks/batch`, { json: { tasks: ds }, retry: { limit: 2, methods: ["POST"] }, hooks }).json());
    } catch (e) {
      if (!(e instanceof NotFoundError || e instanceof MethodNotAllowedError)) throw e;
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
      const res = await this.tracked(`dispatch ${d.taskId}#${d.attempt} to ${nodeUrl}`, (hooks) => this.http.put(`${nodeUrl}/v1/tasks/${encodeURIComponent(d.taskId)}`, { json: d, hooks }));
      this.log?.debug({ task: d.taskId, attempt: d.attempt, node: nodeUrl }, "dispatched");
      return { taskId: d.taskId, attempt: d.attempt, created: res.statusCode === 201 };
    } catch (e) {
      // An order that may have arrived fails the request as a whole, as a batch's does: its outcome is not a refusal.
      if (orderMayHaveArrived(e) || !(e instanceof TorcaError)) throw e;
      return { taskId: d.taskId, attempt: d.attempt, error: { status: e.status, ...e.toJSON() } };
    }
  }

  /**
   * Runs a start request, its failure as a TorcaError; one whose tries went
   * out at least once without an answer is marked (`orderMayHaveArrived`).
   */
  private async tracked<T>(what: string, request: (hooks: { beforeRetry: ((e: RequestError) => void)[] }) => Promise<T>): Promise<T> {
    let lostAnswer = false;
    const note = (e: RequestError) => {
      if (unanswered(e)) lostAnswer = true;
    };
    try {
      return await request({ beforeRetry: [note] });
    } catch (e) {
      if (e instanceof RequestError) note(e);
      const err = httpErrorToTorca(e, what);
      if (lostAnswer) ARRIVAL_UNKNOWN.add(err);
      throw err;
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
