import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ForbiddenError, ValidationError } from "../../src/common/errors.js";
import type { Job, JobSpec, NodeInfo, TaskInstance } from "../../src/common/types.js";
import { prodCapacityRefusal, quotaRefusal, readyCapacity, requireProdWithinCapacity, requireWithinQuota, type Quota } from "../../src/manager/quota/admission.js";
import { bandOf, holdsQuota, usageByNamespace, usageOf, zeroUsage, type Usage } from "../../src/manager/quota/usage.js";
import { quotaViews } from "../../src/manager/http/quotas.js";
import { quotaSection } from "../../src/manager/http/pages/quotas.js";

const GiB = 1024 ** 3;

function spec(name: string, extra: Partial<JobSpec> = {}): JobSpec {
  return {
    name, namespace: "a", type: "service", priority: 200, instances: 1, command: ["true"], env: {},
    resources: { cpu: 1, memory: GiB, disk: 0 }, constraints: [], ports: [],
    restart: { attempts: 0, delayMs: 0, backoff: 1, maxDelayMs: 0 }, placement: { strategy: "binpack" }, ...extra,
  };
}

function job(name: string, extra: Partial<JobSpec> = {}, desired: Job["desired"] = "run"): Job {
  const s = spec(name, extra);
  return { id: s.namespace === "default" ? name : `${s.namespace}:${name}`, spec: s, source: "", status: "pending", desired, submittedAt: 1, updatedAt: 1 };
}

function task(j: Job, index: number, state: TaskInstance["state"]): TaskInstance {
  return { id: `${j.id}/${index}`, jobId: j.id, index, run: 0, desired: "run", state, attempt: 1, restartsOnNode: 0, migrations: 0, createdAt: 1, updatedAt: 1, events: [] };
}

/** A state copy of these jobs, each with the given task states. */
function view(entries: [Job, TaskInstance["state"][]][]) {
  const tasks = new Map(entries.map(([j, states]) => [j.id, states.map((s, i) => task(j, i, s))]));
  return { jobs: new Map(entries.map(([j]) => [j.id, j])), tasksOf: (id: string) => tasks.get(id) ?? [] };
}

function usage(prod: Partial<Usage["prod"]>, batch: Partial<Usage["batch"]> = {}): Usage {
  const z = zeroUsage();
  return { prod: { ...z.prod, ...prod }, batch: { ...z.batch, ...batch } };
}

const QUOTA: Quota = { prod: { cpu: 8, memory: 32 * GiB, instances: 10 }, batch: { cpu: 16, memory: 64 * GiB } };

function node(id: string, cpu: number, memGiB: number, state: NodeInfo["state"] = "ready"): NodeInfo {
  const r = { cpu, memory: memGiB * GiB, disk: 0 };
  return { id, url: "", host: "", state, capacity: r, allocatable: r, attributes: {}, cachedPackages: [], portRange: [1, 2], drivers: { lxc: false, process: true }, lastReportAt: 0 };
}

describe("quota usage", () => {
  it("puts priority 200 and above in prod, everything below in batch", () => {
    assert.equal(bandOf(200), "prod");
    assert.equal(bandOf(1000), "prod");
    assert.equal(bandOf(199), "batch");
    assert.equal(bandOf(0), "batch");
  });

  it("counts instances × resources of live jobs, per band", () => {
    const web = job("web", { instances: 3, resources: { cpu: 2, memory: 4 * GiB, disk: 0 } });
    const etl = job("etl", { type: "batch", priority: 100, instances: 2, resources: { cpu: 0.5, memory: GiB, disk: 0 } });
    const u = usageOf(view([[web, ["running", "pending", "running"]], [etl, []]]), "a");
    assert.deepEqual(u, usage({ cpu: 6, memory: 12 * GiB, instances: 3 }, { cpu: 1, memory: 2 * GiB, instances: 2 }));
  });

  it("counts a job before its tasks exist or are placed: a quota is a reservation", () => {
    assert.equal(usageOf(view([[job("new", { instances: 4 }), []]]), "a").prod.instances, 4);
  });

  it("frees a killed job's share at once, and a finished batch job's", () => {
    const killed = job("killed", { instances: 2 }, "stop");
    const done = job("done", { type: "batch", priority: 100 });
    const failed = job("failed", { type: "batch", priority: 100 });
    const v = view([[killed, ["running", "running"]], [done, ["completed"]], [failed, ["failed"]]]);
    assert.deepEqual(usageOf(v, "a"), zeroUsage());
    assert.equal(holdsQuota(killed, v.tasksOf(killed.id)), false, "still stopping, but no longer wanted");
  });

  it("keeps a batch job's share while any of its tasks is still to run", () => {
    const half = job("half", { type: "batch", priority: 100, instances: 2 });
    assert.equal(holdsQuota(half, [task(half, 0, "completed"), task(half, 1, "running")]), true);
  });

  it("keeps a cron job's share between runs: its next firing needs it", () => {
    const nightly = job("nightly", { type: "batch", priority: 100, schedule: "0 3 * * *" });
    assert.equal(holdsQuota(nightly, [task(nightly, 0, "completed")]), true);
  });

  it("counts only the namespace asked for, and groups every namespace", () => {
    const mine = job("x");
    const theirs = job("x", { namespace: "b", instances: 5 });
    const v = view([[mine, []], [theirs, []]]);
    assert.equal(usageOf(v, "a").prod.instances, 1);
    const all = usageByNamespace(v);
    assert.deepEqual([...all.keys()].sort(), ["a", "b"]);
    assert.equal(all.get("b")!.prod.instances, 5);
  });
});

describe("admission against a quota", () => {
  it("admits anything into a namespace without a quota", () => {
    assert.equal(quotaRefusal("a", undefined, usage({ cpu: 1e6 }), spec("x", { instances: 1000 })), undefined);
  });

  it("admits a job that fits exactly what is left", () => {
    assert.equal(quotaRefusal("a", QUOTA, usage({ cpu: 2, memory: 8 * GiB, instances: 2 }), spec("x", { instances: 3, resources: { cpu: 2, memory: 8 * GiB, disk: 0 } })), undefined);
  });

  it("refuses naming the quota, the ask, the use and what is left", () => {
    const r = quotaRefusal("a", QUOTA, usage({ cpu: 4, instances: 2 }), spec("x", { instances: 3, resources: { cpu: 2, memory: GiB, disk: 0 } }));
    assert.deepEqual(r, { message: "namespace a: prod cpu quota 8 exceeded: job asks 3 × 2 = 6, 4 in use, 4 left", field: "resources.cpu" });
  });

  it("shows memory in binary units", () => {
    const r = quotaRefusal("a", QUOTA, usage({ memory: 30 * GiB }), spec("x", { instances: 2, resources: { cpu: 0.5, memory: 2 * GiB, disk: 0 } }));
    assert.equal(r?.message, "namespace a: prod memory quota 32GiB exceeded: job asks 2 × 2.0GiB = 4.0GiB, 30GiB in use, 2.0GiB left");
    assert.equal(r?.field, "resources.memory");
  });

  it("checks instances first, and says nothing is left when the use is over (a quota lowered below it)", () => {
    const r = quotaRefusal("a", QUOTA, usage({ instances: 12 }), spec("x"));
    assert.deepEqual(r, { message: "namespace a: prod instances quota 10 exceeded: job asks 1, 12 in use, 0 left", field: "instances" });
  });

  it("checks the job's own band only", () => {
    const batchJob = spec("x", { type: "batch", priority: 100, instances: 4, resources: { cpu: 4, memory: GiB, disk: 0 } });
    assert.equal(quotaRefusal("a", QUOTA, usage({ cpu: 8, memory: 32 * GiB, instances: 10 }), batchJob), undefined, "a full prod band leaves batch free");
    assert.match(quotaRefusal("a", QUOTA, usage({}, { cpu: 1 }), batchJob)?.message ?? "", /^namespace a: batch cpu quota 16 exceeded: job asks 4 × 4 = 16, 1 in use, 15 left$/);
  });

  it("adds up fractional cores without refusing a job that fits to the last millicore", () => {
    const q: Quota = { prod: { cpu: 0.3, memory: GiB }, batch: { cpu: 0, memory: 0 } };
    assert.equal(quotaRefusal("a", q, usage({ cpu: 0.1 }), spec("x", { instances: 2, resources: { cpu: 0.1, memory: 1, disk: 0 } })), undefined);
    assert.ok(quotaRefusal("a", q, usage({ cpu: 0.1 }), spec("x", { instances: 3, resources: { cpu: 0.1, memory: 1, disk: 0 } })));
  });

  it("a zero quota keeps the band closed", () => {
    const q: Quota = { prod: { cpu: 8, memory: GiB }, batch: { cpu: 0, memory: 0 } };
    assert.match(quotaRefusal("a", q, zeroUsage(), spec("x", { priority: 100, resources: { cpu: 0.1, memory: 1, disk: 0 } }))?.message ?? "", /batch cpu quota 0 exceeded/);
  });

  it("throws a 403 carrying the field, so torca submit exits 2", () => {
    assert.throws(
      () => requireWithinQuota("a", QUOTA, usage({ cpu: 8 }), spec("x")),
      (e: unknown) => e instanceof ForbiddenError && e.status === 403 && e.exitCode === 2 && e.field === "resources.cpu",
    );
  });
});

describe("prod quotas against the cell's capacity", () => {
  const cap = readyCapacity([node("n1", 8, 32), node("n2", 8, 32), node("lost", 64, 256, "lost"), node("draining", 64, 256, "draining")]);

  it("is the allocatable cpu and memory of ready nodes", () => {
    assert.deepEqual(cap, { cpu: 16, memory: 64 * GiB, nodes: 2 });
  });

  it("allows prod quotas adding up to the capacity", () => {
    const current = new Map<string, Quota>([["b", { prod: { cpu: 8, memory: 32 * GiB }, batch: { cpu: 100, memory: 1000 * GiB } }]]);
    assert.equal(prodCapacityRefusal("a", QUOTA, current, cap), undefined, "batch quotas may oversubscribe");
  });

  it("refuses a prod quota that would take the total past the capacity, saying how much is left", () => {
    const current = new Map<string, Quota>([["b", { prod: { cpu: 12, memory: 8 * GiB }, batch: { cpu: 0, memory: 0 } }]]);
    const r = prodCapacityRefusal("a", QUOTA, current, cap);
    assert.equal(r?.field, "prod.cpu");
    assert.equal(
      r?.message,
      "prod quotas together cannot exceed the cell's capacity: with namespace a at 8, prod cpu quotas total 20, over the 16 allocatable on 2 ready node(s) (other namespaces hold 12; at most 4 is left for a)",
    );
    assert.throws(() => requireProdWithinCapacity("a", QUOTA, current, cap), (e: unknown) => e instanceof ValidationError && e.exitCode === 2);
  });

  it("counts the namespace's new quota in place of its old one", () => {
    const current = new Map<string, Quota>([["a", { prod: { cpu: 16, memory: 64 * GiB }, batch: { cpu: 0, memory: 0 } }]]);
    assert.equal(prodCapacityRefusal("a", { ...QUOTA, prod: { cpu: 16, memory: 64 * GiB } }, current, cap), undefined);
  });

  it("always allows lowering a prod quota, even in a cell that shrank below the total", () => {
    const current = new Map<string, Quota>([["a", { prod: { cpu: 40, memory: 200 * GiB }, batch: { cpu: 0, memory: 0 } }]]);
    assert.equal(prodCapacityRefusal("a", { ...QUOTA, prod: { cpu: 30, memory: 100 * GiB } }, current, cap), undefined);
    assert.match(prodCapacityRefusal("a", { ...QUOTA, prod: { cpu: 41, memory: 100 * GiB } }, current, cap)?.message ?? "", /prod cpu quotas total 41/);
  });
});

describe("quota views", () => {
  it("list namespaces with a quota or holding resources, unlimited ones with quota null", () => {
    const stored = new Map([["b", { ...QUOTA, setAt: 5, setBy: "admin" }]]);
    const views = quotaViews(stored, new Map([["a", usage({ cpu: 1, memory: GiB, instances: 1 })]]));
    assert.deepEqual(views.map((v) => [v.namespace, v.quota === null]), [["a", true], ["b", false]]);
    assert.deepEqual(views[1]!.quota?.batch, { cpu: 16, memory: 64 * GiB, instances: null });
    assert.deepEqual(views[1]!.used, zeroUsage());
    assert.equal(quotaViews(new Map(), new Map([["a", usage({ cpu: 0.1 + 0.1 + 0.1 })]]))[0]!.used.prod.cpu, 0.3, "cores to the millicore");
  });

  it("show on the overview as one row per limited namespace and band, escaped", () => {
    const stored = new Map([["<b>", { ...QUOTA, setAt: 5, setBy: "admin" }]]);
    const html = quotaSection(quotaViews(stored, new Map([["<b>", usage({ cpu: 6, memory: 12 * GiB, instances: 3 })], ["free", usage({ cpu: 1 })]])));
    assert.ok(!html.includes("<b>"), html);
    assert.equal(html.match(/<tr data-quota=/g)?.length, 2, "prod and batch of the one limited namespace");
    assert.match(html, /<td>prod<\/td><td>6 \/ 8<\/td><td>12GiB \/ 32GiB<\/td><td>3 \/ 10<\/td>/);
    assert.match(html, /<td>batch<\/td><td>0 \/ 16<\/td><td>0B \/ 64GiB<\/td><td>0 \/ <span class="muted">unlimited<\/span><\/td>/);
    assert.match(quotaSection([]), /No quotas are set/);
  });
});
