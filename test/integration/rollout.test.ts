import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { get } from "node:http";
import type { Deployment, TaskInstance } from "../../src/common/types.js";
import { createResolver, type Resolver } from "../../naming/resolver.js";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { runTorca } from "../harness/cli.js";
import { LoadGenerator, type LoadReport } from "../harness/load.js";
import { ROLLING_SERVICE, rollingJob } from "../harness/rolling-service.js";
import { until } from "../harness/wait.js";

/*
 * Rolling updates end to end on a local cell (real ZooKeeper, two managers,
 * an agent running tasks as processes): a 4-instance HTTP service behind
 * naming is changed while a client that resolves it through the resolver
 * library sends requests without pause. Every failure counts (refused,
 * reset, 5xx, timeout, no endpoint); none is allowed.
 */

const SERVICE = ROLLING_SERVICE;
const job = rollingJob;

interface DeploymentView {
  version: number;
  deployment: Deployment | null;
  versions: { version: number; instances: number; healthy: number; canaries: number; stopping: number }[];
}

describe("rolling updates of a service behind naming", () => {
  let c: TestCell;
  let resolver: Resolver;

  before(async () => {
    c = await startTestCell({ managers: 2, agents: 1 });
    resolver = await createResolver({ zookeeper: c.cell.zookeeper!.connectString, sessionTimeoutMs: 4000 });
  });

  after(async () => {
    resolver?.close();
    if (c) {
      await c.api.delete(`${await c.primaryUrl()}/v1/jobs/web`).catch(() => undefined);
      await c.close();
    }
  });

  const submit = async (body: string) =>
    c.api.post(`${await c.primaryUrl()}/v1/jobs`, { body, headers: { "content-type": "application/json" } }).json<{ version: number; change: string; message: string }>();
  const deployment = async () => c.api.get(`${await c.primaryUrl()}/v1/jobs/web/deployment`).json<DeploymentView>();
  const waitDeployment = (version: number, statuses: Deployment["status"][], timeoutMs = 90_000) =>
    until(`the deployment of version ${version} to be ${statuses.join(" or ")}`, async () => {
      const d = await deployment().catch(() => undefined);
      return d?.deployment?.version === version && statuses.includes(d.deployment.status) && d;
    }, { timeoutMs, intervalMs: 250 });
  const liveTasks = async () => (await c.job("web")).taskList.filter((t: TaskInstance) => !["completed", "failed", "killed", "lost"].includes(t.state));

  /** Runs `during` with the load on, and returns what the client saw. */
  const underLoad = async (during: () => Promise<void>): Promise<LoadReport> => {
    const load = new LoadGenerator(resolver, SERVICE, { workers: 2 });
    load.start();
    try {
      await during();
    } finally {
      await load.stop();
    }
    return load.report;
  };

  const torca = async (...args: string[]) => {
    const r = await runTorca(["--json", ...args], { TORCA_MANAGER: c.cell.managerUrls.join(","), TORCA_TOKEN: c.cell.token });
    assert.equal(r.code, 0, `torca ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };
  const fetchText = (host: string, port: number, path: string) =>
    new Promise<string>((resolveF, reject) => {
      get({ host, port, path, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (x: string) => (body += x));
        res.on("end", () => resolveF(body));
      }).on("error", reject);
    });
  const snapshot = async () => new Map((await liveTasks()).map((t) => [t.id, `${t.attempt}@${t.startedAt}`]));

  const noFailures = (r: LoadReport) => assert.equal(r.failed, 0, `failed requests: ${JSON.stringify(r.failures)} (ok: ${r.ok})`);

  test("v0 → v1 (a changed environment value): no failed request, every instance ends on v1", async () => {
    const first = await submit(job("v0"));
    assert.equal(first.change, "created");
    await until("four endpoints", async () => (await resolver.resolve(SERVICE)).length === 4, { timeoutMs: 60_000 });

    const report = await underLoad(async () => {
      const next = await submit(job("v1"));
      assert.equal(next.change, "new-version", next.message);
      assert.equal(next.version, 1);
      await waitDeployment(1, ["successful"]);
    });
    noFailures(report);
    assert.ok(report.ok > 100, `requests answered: ${report.ok}`);
    assert.ok((report.bodies.v0 ?? 0) > 0 && (report.bodies.v1 ?? 0) > 0, `answers by version: ${JSON.stringify(report.bodies)}`);
    const live = await liveTasks();
    assert.deepEqual(live.map((t) => t.version), [1, 1, 1, 1], "every instance on version 1");
    const eps = await resolver.resolve(SERVICE);
    assert.equal(eps.length, 4);
  });

  test("the same file again is a no-op that says so", async () => {
    const again = await submit(job("v1"));
    assert.equal(again.change, "unchanged");
    assert.match(again.message, /unchanged: version 1 is running/);
    assert.equal((await deployment()).version, 1);
  });

  test("plan of a live job shows the diff and which instances are replaced", async () => {
    const plan = await c.api
      .post(`${await c.primaryUrl()}/v1/jobs/plan`, { body: job("v9", { instances: 5 }), headers: { "content-type": "application/json" } })
      .json<{ version: { fromVersion: number; diff: { fields: { field: string; from?: unknown; to?: unknown; inPlace: boolean }[]; replaces: boolean }; instances: { replaced: string[]; added: string[]; removed: string[] } } }>();
    assert.equal(plan.version.fromVersion, 1);
    assert.deepEqual(plan.version.diff.fields.map((f) => [f.field, f.from, f.to, f.inPlace]), [["env.VERSION", "v1", "v9", false], ["instances", 4, 5, true]]);
    assert.equal(plan.version.instances.replaced.length, 4);
    assert.equal(plan.version.instances.added.length, 1);
  });

  test("autoRevert: a v2 whose health check never passes is reverted to v1, with no failed request", async () => {
    const report = await underLoad(async () => {
      const v2 = await submit(job("v2", { checkPath: "/never", update: { autoRevert: true, healthyDeadline: "5s", progressDeadline: "10s" } }));
      assert.equal(v2.version, 2);
      // The failed deployment is replaced by the revert's at once: its outcome stays with version 2.
      await waitDeployment(3, ["successful"]);
    });
    noFailures(report);
    assert.equal(report.bodies.v2, undefined, "no request reached v2");
    const live = await liveTasks();
    assert.deepEqual(live.map((t) => t.version), [3, 3, 3, 3]);
    const versions = await c.api.get(`${await c.primaryUrl()}/v1/jobs/web/versions`).json<{ versions: { version: number; revertOf?: number; stable: boolean; deployment?: { status: string; description: string } }[] }>();
    assert.deepEqual(versions.versions.map((v) => [v.version, v.revertOf ?? null, v.deployment?.status ?? null]), [[3, 1, "successful"], [2, null, "reverted"], [1, null, "successful"], [0, null, null]]);
    assert.match(versions.versions[1]!.deployment!.description, /not healthy within 5000 ms; reverting to version 1/);
  });

  test("canaries: the running version keeps every instance serving until promote", async () => {
    const report = await underLoad(async () => {
      await submit(job("v4", { update: { canary: 1 } }));
      const waiting = await waitDeployment(4, ["awaiting-promotion"]);
      const old = waiting.versions.find((v) => v.version === 3)!;
      assert.equal(old.instances, 4, "all four old instances still wanted");
      assert.equal(old.healthy, 4, "and serving");
      assert.equal(waiting.versions.find((v) => v.version === 4)!.canaries, 1);
      await until("the canary answering", async () => (await resolver.resolve(SERVICE)).length === 5, { timeoutMs: 10_000 });
      await c.api.post(`${await c.primaryUrl()}/v1/jobs/web/deployment/promote`, { json: {} }).json();
      await waitDeployment(4, ["successful"]);
    });
    noFailures(report);
    assert.deepEqual((await liveTasks()).map((t) => t.version), [4, 4, 4, 4]);
  });

  test("torca scale applies in place: the running instances are not restarted", async () => {
    const before = await snapshot();
    const up = await torca("scale", "web", "5");
    assert.equal(up.change, "new-version");
    await waitDeployment(up.version as number, ["successful"]);
    const after = await snapshot();
    assert.equal(after.size, 5);
    for (const [id, run] of before) assert.equal(after.get(id), run, `${id} kept running`);
    const down = await torca("scale", "web", "4");
    await waitDeployment(down.version as number, ["successful"]);
    assert.equal((await snapshot()).size, 4);
  });

  test("torca restart replaces every instance, with no failed request", async () => {
    const before = await snapshot();
    const report = await underLoad(async () => {
      const r = await torca("restart", "web");
      assert.ok((r.deployment as Deployment).restartAt);
      await waitDeployment((r.deployment as Deployment).version, ["successful"]);
    });
    noFailures(report);
    const after = await snapshot();
    assert.equal(after.size, 4);
    for (const [id, run] of after) assert.notEqual(before.get(id), run, `${id} restarted`);
  });

  test("torca signal reaches the task's process", async () => {
    const [t] = await liveTasks();
    const r = await torca("signal", t!.id, "usr2");
    assert.equal(r.signal, "SIGUSR2");
    const ep = (await resolver.resolve(SERVICE)).find((e) => e.task === t!.id)!;
    await until("the signal counted", async () => (await fetchText(ep.host, ep.port, "/signals")) === "1", { timeoutMs: 5000 });
  });

  test("torca history --diff lists the versions with their changes; torca revert goes back to one", async () => {
    const h = await torca("history", "web", "--diff");
    const versions = h.versions as { version: number; diff?: { fields: { field: string }[] } }[];
    assert.equal(versions[0]!.version, 6, "versions 0-6, newest first");
    assert.deepEqual(versions.find((v) => v.version === 1)!.diff!.fields.map((f) => f.field), ["env.VERSION"]);
    const report = await underLoad(async () => {
      const r = await torca("revert", "web", "1");
      assert.equal(r.version, 7);
      await waitDeployment(7, ["successful"]);
    });
    noFailures(report);
    const status = await torca("deployment", "status", "web");
    assert.equal((status.deployment as Deployment).status, "successful");
    assert.deepEqual((await liveTasks()).map((t) => t.version), [7, 7, 7, 7]);
    assert.equal(await fetchText((await resolver.resolve(SERVICE))[0]!.host, (await resolver.resolve(SERVICE))[0]!.port, "/"), "v1");
  });

  test("the primary killed mid-rollout: the new primary completes it, no instance runs twice", async () => {
    const { primary } = await c.steadyPrimary();
    const report = await underLoad(async () => {
      const next = await submit(job("v8"));
      await until("one instance replaced", async () => ((await deployment()).versions.find((v) => v.version === next.version)?.healthy ?? 0) >= 1, { timeoutMs: 60_000 });
      await c.cell.stopDaemon(c.cell.managerIdAt(primary.url), "SIGKILL");
      await until("a new primary", async () => (await c.cell.waitForPrimary()).url !== primary.url, { timeoutMs: 60_000 });
      await waitDeployment(next.version, ["successful"]);
    });
    noFailures(report);
    const live = await liveTasks();
    assert.deepEqual(live.map((t) => t.version), [8, 8, 8, 8]);
    const agentUrl = c.cell.daemons.get("agent-1")!.url;
    const onAgent = (await c.api.get(`${agentUrl}/v1/tasks`).json<{ tasks: { taskId: string; state: string }[] }>()).tasks.filter((t) => t.state !== "exited");
    assert.equal(onAgent.length, 4, `processes on the agent: ${onAgent.map((t) => t.taskId).join(", ")}`);
    assert.equal(new Set(onAgent.map((t) => t.taskId)).size, 4, "no task id twice");
  });

  test("torca kill of a service drains: its instances leave naming before they stop", async () => {
    const report = await underLoad(async () => {
      await c.api.delete(`${await c.primaryUrl()}/v1/jobs/web`);
      await until("no endpoint left", async () => (await resolver.resolve(SERVICE)).length === 0, { timeoutMs: 30_000 });
      await until("every instance stopped", async () => (await liveTasks()).length === 0, { timeoutMs: 30_000 });
    });
    const { "no-endpoint": gone, ...others } = report.failures;
    assert.deepEqual(others, {}, `failures other than "no endpoint" once all had left: ${JSON.stringify(others)}`);
    assert.ok(gone, "the client saw the name empty at the end");
  });

  test("a finished job's name reused: the finished run is archived to the history store before the new job replaces it", async () => {
    // The primary opens its history store on first use, which takes seconds on a loaded machine: open it first.
    await c.api.get(`${await c.primaryUrl()}/v1/history`, { timeout: { request: 120_000 } });
    await c.submit(batchJob("reused", ["/bin/true"]));
    await c.waitJob("reused", (j) => j.status === "complete", 30_000, "complete");
    // Re-sent on 503 as the CLI does: the store's first writes can hold the primary up long enough for a ZooKeeper operation to time out.
    const again = await until("the name reused", async () => {
      const r = await c.api.post(`${await c.primaryUrl()}/v1/jobs`, { body: batchJob("reused", ["/bin/true"]), headers: { "content-type": "application/yaml" }, throwHttpErrors: false, timeout: { request: 60_000 } });
      return r.statusCode !== 503 && r;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
    assert.equal(again.statusCode, 201, again.body);
    assert.equal((JSON.parse(again.body) as { change: string }).change, "created");
    const history = await c.api.get(`${await c.primaryUrl()}/v1/history/reused`).json<{ runs: { status: string }[]; live: unknown }>();
    assert.deepEqual(history.runs.map((r) => r.status), ["complete"], "the first job's run, archived");
    assert.ok(history.live, "and the new job live");
  });

  test("a new version of a live batch job is refused, saying why", async () => {
    await c.submit(batchJob("long", ["/bin/sleep", "60"]));
    const r = await c.api.post(`${await c.primaryUrl()}/v1/jobs`, { body: batchJob("long", ["/bin/sleep", "61"]), headers: { "content-type": "application/yaml" }, throwHttpErrors: false });
    assert.equal(r.statusCode, 409);
    assert.match(r.body, /live batch job: a new version applies to services only/);
    await c.api.delete(`${await c.primaryUrl()}/v1/jobs/long`);
  });
});
