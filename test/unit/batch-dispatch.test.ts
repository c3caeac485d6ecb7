import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import Router from "@koa/router";
import Koa from "koa";
import { agentRouter, type AgentApiDeps } from "../../agent/http/api.js";
import type { TaskRunner } from "../../agent/tasks/runner.js";
import type { UsageHistory } from "../../agent/usage-history.js";
import { TokenTable } from "../../src/common/auth.js";
import { DriverError, StaleEpochError, UnavailableError } from "../../src/common/errors.js";
import { createLogger } from "../../src/common/logger.js";
import { MAX_DISPATCH_BATCH, type TaskBatchResult, type TaskDispatch } from "../../src/common/protocol.js";
import type { Job, JobSpec, NodeInfo, TaskInstance } from "../../src/common/types.js";
import { errorEnvelope } from "../../src/http/edge.js";
import { HttpDispatcher, orderMayHaveArrived, type Dispatcher } from "../../src/manager/dispatcher/dispatcher.js";
import { TaskSender } from "../../src/manager/primary/sender.js";
import { until } from "../harness/wait.js";

/**
 * Start orders travel in batches: the sender collects what one turn of the
 * event loop gives it into one request per node, the agent answers each order
 * of a batch on its own, and an agent without the batch route gets them one
 * by one.
 */

const TOKEN = "batch-dispatch-test-token";
const quiet = createLogger("batch-dispatch-test", {}, { destination: new Writable({ write: (_c, _e, done) => done() }), level: "fatal" });
const SPEC = { name: "web", namespace: "default", type: "batch", instances: 3, command: ["/bin/true"], env: {}, resources: { cpu: 0.1, memory: 1024, disk: 0 }, ports: [] } as unknown as JobSpec;
const JOB = { id: "default/web", spec: SPEC } as Job;

function taskOf(index: number, attempt = 1): TaskInstance {
  return { id: `default/web/${index}`, jobId: "default/web", index, attempt } as TaskInstance;
}

function nodeOf(id: string, url = `http://${id}.invalid`): NodeInfo {
  return { id, url, state: "ready" } as NodeInfo;
}

/** A dispatcher that records each request and answers with `answer`. */
function recordingDispatcher(answer: (ds: readonly TaskDispatch[]) => Promise<TaskBatchResult[]> = async (ds) => ds.map((d) => ({ taskId: d.taskId, attempt: d.attempt, created: true }))) {
  const requests: { url: string; tasks: string[] }[] = [];
  const dispatcher: Dispatcher = {
    start: (url, ds) => {
      requests.push({ url, tasks: ds.map((d) => d.taskId) });
      return answer(ds);
    },
    stop: async () => undefined,
    signal: async () => undefined,
  };
  return { dispatcher, requests };
}

function senderWith(dispatcher: Dispatcher, fenced = { value: false }) {
  const failed: { task: string; error: unknown }[] = [];
  let fences = 0;
  const sender = new TaskSender(
    dispatcher,
    {
      epoch: 7,
      stopGraceMs: 1000,
      now: Date.now,
      isFenced: () => fenced.value,
      fence: () => {
        fences++;
        fenced.value = true;
      },
      node: () => undefined,
      job: () => undefined,
      onDispatchFailed: (t, _node, error) => failed.push({ task: t.id, error }),
    },
    quiet,
  );
  return { sender, failed, fences: () => fences };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("the sender", () => {
  test("sends what one turn gives it as one request per node, each order once and in order", async () => {
    const { dispatcher, requests } = recordingDispatcher();
    const { sender, failed } = senderWith(dispatcher);
    const a = nodeOf("a");
    const b = nodeOf("b");
    sender.start(taskOf(0), JOB, a);
    sender.start(taskOf(1), JOB, b);
    sender.start(taskOf(2), JOB, a);
    assert.equal(requests.length, 0, "nothing leaves before the turn ends");
    await turn();
    assert.deepEqual(requests, [
      { url: a.url, tasks: ["default/web/0", "default/web/2"] },
      { url: b.url, tasks: ["default/web/1"] },
    ]);
    sender.start(taskOf(3), JOB, a);
    await turn();
    assert.deepEqual(requests.at(-1), { url: a.url, tasks: ["default/web/3"] }, "a later turn is a new request");
    assert.equal(requests.length, 3);
    assert.deepEqual(failed, []);
  });

  test(`splits a node's orders past ${MAX_DISPATCH_BATCH} into several requests`, async () => {
    const { dispatcher, requests } = recordingDispatcher();
    const { sender } = senderWith(dispatcher);
    const a = nodeOf("a");
    for (let i = 0; i < MAX_DISPATCH_BATCH + 3; i++) sender.start(taskOf(i), JOB, a);
    await turn();
    assert.deepEqual(requests.map((r) => r.tasks.length), [MAX_DISPATCH_BATCH, 3]);
  });

  test("a refused order is a dispatch failure of that task alone, with the agent's error class", async () => {
    const { dispatcher } = recordingDispatcher(async (ds) => ds.map((d, i) => (i === 1 ? { taskId: d.taskId, attempt: d.attempt, error: { status: 500, ...new DriverError("no such image").toJSON() } } : { taskId: d.taskId, attempt: d.attempt, created: true })));
    const { sender, failed, fences } = senderWith(dispatcher);
    for (let i = 0; i < 3; i++) sender.start(taskOf(i), JOB, nodeOf("a"));
    await until("the refusal handled", () => (failed.length ? true : undefined));
    assert.deepEqual(failed.map((f) => f.task), ["default/web/1"]);
    assert.ok(failed[0]!.error instanceof DriverError);
    assert.equal(fences(), 0);
  });

  test("a request that fails as a whole fails every order in it", async () => {
    const { dispatcher } = recordingDispatcher(() => Promise.reject(new UnavailableError("connection refused")));
    const { sender, failed } = senderWith(dispatcher);
    for (let i = 0; i < 3; i++) sender.start(taskOf(i), JOB, nodeOf("a"));
    await until("the failures handled", () => (failed.length === 3 ? true : undefined));
    assert.ok(failed.every((f) => f.error instanceof UnavailableError));
  });

  test("a stale-epoch refusal fences the primary once and counts as no dispatch failure", async () => {
    const { dispatcher } = recordingDispatcher(async (ds) => ds.map((d) => ({ taskId: d.taskId, attempt: d.attempt, error: { status: 409, ...new StaleEpochError(7, 8).toJSON() } })));
    const { sender, failed, fences } = senderWith(dispatcher);
    for (let i = 0; i < 3; i++) sender.start(taskOf(i), JOB, nodeOf("a"));
    await until("fenced", () => (fences() ? true : undefined));
    await turn();
    assert.equal(fences(), 1);
    assert.deepEqual(failed, []);
  });

  test("a fenced primary sends nothing, not even what it queued before", async () => {
    const { dispatcher, requests } = recordingDispatcher();
    const fenced = { value: false };
    const { sender } = senderWith(dispatcher, fenced);
    sender.start(taskOf(0), JOB, nodeOf("a"));
    fenced.value = true;
    sender.start(taskOf(1), JOB, nodeOf("a"));
    await turn();
    assert.deepEqual(requests, []);
  });
});

describe("the agent's start routes and the HTTP dispatcher", () => {
  const started: TaskDispatch[] = [];
  const servers: Server[] = [];
  let agentUrl = "";
  let olderAgentUrl = "";
  const tokens = new TokenTable(TOKEN);

  /** A runner that records starts; a task named "…/9" fails to start. */
  const runner = {
    start: async (d: TaskDispatch) => {
      if (d.index === 9) throw new DriverError("cannot start task 9");
      const created = !started.some((s) => s.taskId === d.taskId && s.attempt === d.attempt);
      if (created) started.push(d);
      return { created };
    },
    get: (id: string) => (started.some((s) => s.taskId === id) ? { state: "starting" } : undefined),
  } as unknown as TaskRunner;
  const deps: AgentApiDeps = {
    runner,
    usage: {} as UsageHistory,
    stop: async () => true,
    admitEpoch: (epoch) => {
      if (epoch < 7) throw new StaleEpochError(epoch, 7);
    },
    status: () => ({}),
    bodyLimit: 1024 * 1024,
  };

  async function serve(router: Router): Promise<string> {
    const app = new Koa();
    app.use(errorEnvelope(quiet));
    app.use(router.routes()).use(router.allowedMethods());
    const server = createServer(app.callback());
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  before(async () => {
    agentUrl = await serve(agentRouter(deps, tokens));
    // An agent from before the batch route: the single start route and the task reads only.
    const full = agentRouter(deps, tokens);
    const older = new Router();
    for (const layer of full.stack) if (!String(layer.path).endsWith("/batch")) older.register(layer.path, layer.methods, layer.stack);
    olderAgentUrl = await serve(older);
  });

  after(() => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))));

  const dispatchOf = (index: number, epoch = 7, attempt = 1): TaskDispatch => ({ epoch, taskId: `default/web/${index}`, jobId: "default/web", index, attempt, spec: SPEC });

  test("one request starts every order of a batch and answers each: accepted, already there, or refused with its error", async () => {
    started.length = 0;
    const http = new HttpDispatcher(TOKEN, quiet);
    const first = await http.start(agentUrl, [dispatchOf(0), dispatchOf(1)]);
    assert.deepEqual(first.map((r) => [r.taskId, r.created]), [["default/web/0", true], ["default/web/1", true]]);
    const second = await http.start(agentUrl, [dispatchOf(1), dispatchOf(9), dispatchOf(2)]);
    assert.equal(second[0]!.created, false, "the same (task, attempt) again starts nothing");
    assert.equal(second[1]!.error?.code, "driver");
    assert.equal(second[2]!.created, true);
    assert.deepEqual(started.map((d) => d.taskId), ["default/web/0", "default/web/1", "default/web/2"]);
  });

  test("orders of a stale epoch are refused one by one with stale_epoch and start nothing", async () => {
    started.length = 0;
    const results = await new HttpDispatcher(TOKEN, quiet).start(agentUrl, [dispatchOf(3, 6), dispatchOf(4, 6)]);
    assert.deepEqual(results.map((r) => [r.error?.code, r.error?.status]), [["stale_epoch", 409], ["stale_epoch", 409]]);
    assert.deepEqual(started, []);
  });

  test("a batch naming a task twice is refused as a whole", async () => {
    await assert.rejects(new HttpDispatcher(TOKEN, quiet).start(agentUrl, [dispatchOf(5), dispatchOf(5, 7, 2)]), { code: "invalid_input" });
  });

  test("an agent without the batch route gets each order alone, answered the same way", async () => {
    started.length = 0;
    const http = new HttpDispatcher(TOKEN, quiet);
    const results = await http.start(olderAgentUrl, [dispatchOf(0), dispatchOf(9), dispatchOf(1, 6)]);
    assert.deepEqual(results.map((r) => r.created ?? r.error?.code), [true, "driver", "stale_epoch"]);
    assert.deepEqual(started.map((d) => d.taskId), ["default/web/0"]);
    const again = await http.start(olderAgentUrl, [dispatchOf(1), dispatchOf(2)]);
    assert.deepEqual(again.map((r) => r.created), [true, true]);
  });
});

describe("a start request that fails: refused for certain, or perhaps arrived", () => {
  const dispatchOf = (index: number): TaskDispatch => ({ epoch: 7, taskId: `default/web/${index}`, jobId: "default/web", index, attempt: 1, spec: SPEC });
  let resetting: Server;
  let resettingUrl = "";
  let closedUrl = "";

  before(async () => {
    // Reads each request whole, then drops the connection without answering: the agent may have acted on it.
    resetting = createServer((req) => req.resume().on("end", () => req.socket.destroy()));
    await new Promise<void>((resolve) => resetting.listen(0, "127.0.0.1", resolve));
    resettingUrl = `http://127.0.0.1:${(resetting.address() as AddressInfo).port}`;
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    closedUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  after(() => new Promise<void>((resolve) => resetting.close(() => resolve())));

  test("sent and unanswered, alone or in a batch: the request fails as a whole, marked as perhaps arrived", async () => {
    const http = new HttpDispatcher(TOKEN, quiet);
    // got retries each (idempotent) request twice first, a second apart: both requests at once.
    const failures = await Promise.all([[dispatchOf(0)], [dispatchOf(1), dispatchOf(2)]].map((orders) => http.start(resettingUrl, orders).then(() => undefined, (x: unknown) => x)));
    for (const e of failures) {
      assert.ok(e instanceof UnavailableError, `rejected with ${String(e)}`);
      assert.equal(orderMayHaveArrived(e), true);
    }
  });

  test("a connection never made is a certain refusal: an order alone is answered with its error, a batch rejects unmarked", async () => {
    const http = new HttpDispatcher(TOKEN, quiet);
    const [[alone], e] = await Promise.all([http.start(closedUrl, [dispatchOf(0)]), http.start(closedUrl, [dispatchOf(1), dispatchOf(2)]).then(() => undefined, (x: unknown) => x)]);
    assert.equal(alone!.error?.code, "unavailable");
    assert.ok(e instanceof UnavailableError);
    assert.equal(orderMayHaveArrived(e), false);
  });
});
