/**
 * The primary's side of versions and deployments (deployment/rollouts.ts)
 * against an in-memory state store and ZooKeeper: what a submission for a
 * live job writes, and what a tick's step writes and sends.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConflictError, ForbiddenError } from "../../src/common/errors.js";
import { createLogger } from "../../src/common/logger.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import type { Job, JobSpec, TaskInstance } from "../../src/common/types.js";
import type { ZkSession } from "../../src/coord/zk.js";
import { Rollouts } from "../../src/manager/deployment/rollouts.js";
import type { TaskSender } from "../../src/manager/primary/sender.js";
import { TaskWriter } from "../../src/manager/primary/writer.js";
import { VersionStore } from "../../src/manager/versions/store.js";

const NOW = 5_000_000;
const service = (env = "v0", extra = "") => parseTaskFile(`name: web\ncommand: [/bin/web]\ninstances: 2\nenv: { V: ${env} }\nports: [{ name: http }]\nservice: { name: web.x }\n${extra}`);

function fakeZk(): ZkSession {
  const nodes = new Map<string, string>();
  return {
    getIfExists: async (p: string) => (nodes.has(p) ? { data: Buffer.from(nodes.get(p)!), stat: { version: 0 } } : undefined),
    putRetrying: async (_parent: string, p: string, d: string) => void nodes.set(p, d),
    createIfAbsent: async (p: string, d: string) => !nodes.has(p) && nodes.set(p, d) !== undefined,
    delete: async (p: string) => void nodes.delete(p),
  } as unknown as ZkSession;
}

function running(index: number, version: number): TaskInstance {
  return { id: `web/${index}`, jobId: "web", index, run: 0, desired: "run", state: "running", attempt: 1, restartsOnNode: 0, migrations: 0, nodeId: "n1", createdAt: 0, updatedAt: 0, startedAt: 0, events: [], version, healthy: true, healthySince: 0 };
}

function setup(job: Job, tasks: TaskInstance[], admit: (job: Job, spec: JobSpec) => Promise<() => void> = async () => () => undefined) {
  const jobs = new Map([[job.id, job]]);
  const taskMap = new Map(tasks.map((t) => [t.index, t]));
  const stops: { id: string; why: string; drainMs: number }[] = [];
  const store = {
    jobs,
    tasksOf: () => [...taskMap.values()],
    task: (_: string, i: number) => taskMap.get(i),
    updateJob: async (j: Job) => void jobs.set(j.id, j),
  };
  const writer = new TaskWriter({ putTask: async (t) => void taskMap.set(t.index, t), deferTask: (t) => void taskMap.set(t.index, t) }, () => false);
  const sender = { stop: (t: TaskInstance, why: string, drainMs: number) => stops.push({ id: t.id, why, drainMs }) } as unknown as TaskSender;
  const zk = fakeZk();
  const versions = new VersionStore(zk, "/t");
  const rollouts = new Rollouts({ store, writer, sender, versions, log: createLogger("rollouts-test", {}, { level: "silent" }), now: () => NOW, isFenced: () => false, admit });
  return { rollouts, jobs, taskMap, stops, versions, zk };
}

const jobOf = (spec: JobSpec, extra: Partial<Job> = {}): Job => ({ id: "web", spec, source: "v0 file", status: "running", desired: "run", submittedAt: 1, updatedAt: 1, ...extra });

describe("a new job's first version", () => {
  test("is recorded with the job's create; a list left by a create that failed is replaced by the next job of that name", async () => {
    const s = setup(jobOf(service()), []);
    const refused = Object.assign(new Error("job web already exists"), { status: 409 });
    await assert.rejects(s.rollouts.recordFirst(jobOf(service("stale"), { source: "never created" }), Promise.reject(refused)), /already exists/);
    await s.rollouts.recordFirst(s.jobs.get("web")!, Promise.resolve());
    const versions = await new VersionStore(s.zk, "/t").list("web");
    assert.deepEqual(versions.map((v) => [v.version, v.source]), [[0, "v0 file"]]);
  });
});

describe("submitting a live job", () => {
  test("a changed spec: version 1 with a deployment, both versions kept", async () => {
    const s = setup(jobOf(service()), [running(0, 0), running(1, 0)]);
    await s.rollouts.recordFirst(s.jobs.get("web")!, Promise.resolve());
    const out = await s.rollouts.submitVersion(s.jobs.get("web")!, service("v1"), "v1 file", undefined);
    assert.equal(out.change, "new-version");
    assert.equal(out.version, 1);
    const job = s.jobs.get("web")!;
    assert.deepEqual([job.version, job.source, job.deployment?.status, job.deployment?.stableVersion, job.submittedAt], [1, "v1 file", "running", 0, 1]);
    assert.deepEqual((await s.versions.list("web")).map((v) => [v.version, v.source]), [[1, "v1 file"], [0, "v0 file"]]);
  });

  test("the same spec: unchanged, nothing written", async () => {
    const s = setup(jobOf(service()), []);
    const out = await s.rollouts.submitVersion(s.jobs.get("web")!, service(), "same", undefined);
    assert.equal(out.change, "unchanged");
    assert.equal(s.jobs.get("web")!.deployment, undefined);
    assert.deepEqual(await s.versions.list("web"), []);
  });

  test("a live batch job is refused", async () => {
    const batch = parseTaskFile("name: web\ntype: batch\ncommand: [/bin/run]\n");
    const s = setup(jobOf(batch), []);
    await assert.rejects(s.rollouts.submitVersion(s.jobs.get("web")!, { ...batch, env: { A: "1" } }, "", undefined), ConflictError);
  });

  test("the version's reservation is given back once the version is stored", async () => {
    const held: string[] = [];
    const s = setup(jobOf(service()), [running(0, 0)], async (job) => {
      held.push(job.id);
      return () => void held.splice(held.indexOf(job.id), 1);
    });
    const out = await s.rollouts.submitVersion(s.jobs.get("web")!, service("v1"), "v1 file", undefined);
    assert.equal(out.change, "new-version");
    assert.deepEqual(held, [], "released");
  });

  test("a version the namespace's quota cannot hold is refused before anything is written", async () => {
    const s = setup(jobOf(service()), [], async () => {
      throw new ForbiddenError("over quota");
    });
    await assert.rejects(s.rollouts.submitVersion(s.jobs.get("web")!, service("v1"), "", undefined), ForbiddenError);
    assert.equal(s.jobs.get("web")!.version, undefined);
  });

  test("in place (instances only): no canaries even when the update block asks for them", async () => {
    const spec = service("v0", "update: { canary: 1 }\n");
    const s = setup(jobOf(spec), []);
    await s.rollouts.scale("web", 3);
    assert.equal(s.jobs.get("web")!.deployment?.promoted, true);
  });
});

describe("a tick's deployment step", () => {
  test("records the stop of an old instance, then asks its agent to drain it for drainDelay", async () => {
    const s = setup(jobOf(service("v0", "update: { drainDelay: 3s }\n")), [running(0, 0), running(1, 0)]);
    await s.rollouts.recordFirst(s.jobs.get("web")!, Promise.resolve());
    await s.rollouts.submitVersion(s.jobs.get("web")!, service("v1", "update: { drainDelay: 3s }\n"), "v1", undefined);
    await s.rollouts.run();
    assert.deepEqual(s.stops, [{ id: "web/1", why: "replaced by version 1", drainMs: 3000 }]);
    assert.equal(s.taskMap.get(1)!.desired, "stop");
    await s.rollouts.run();
    assert.equal(s.stops.length, 1, "stepping again sends nothing new");
  });

  test("a stopped slot is refilled with the new version, its attempts carrying on", async () => {
    const s = setup(jobOf(service()), [running(0, 0), { ...running(1, 0), desired: "stop", state: "killed", attempt: 4 }]);
    await s.rollouts.recordFirst(s.jobs.get("web")!, Promise.resolve());
    await s.rollouts.submitVersion(s.jobs.get("web")!, service("v1"), "v1", undefined);
    await s.rollouts.run();
    const t = s.taskMap.get(1)!;
    assert.deepEqual([t.state, t.desired, t.version, t.attempt, t.versionSince], ["pending", "run", 1, 4, NOW]);
  });
});
