import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Job, JobSpec, NodeInfo, Resources, TaskInstance } from "../../src/common/types.js";
import { cellCapacity, fragmentation, usedByNode } from "../../src/manager/http/pages/capacity.js";
import { esc, jsonForScript } from "../../src/http/pages/html.js";
import { jobPage } from "../../src/manager/http/pages/job.js";
import { jobRow, taskCounts } from "../../src/manager/http/pages/jobs.js";
import { nodePage } from "../../src/manager/http/pages/nodes.js";
import type { StateStore } from "../../src/coord/state-store.js";
import { loginPage } from "../../src/manager/http/pages/layout.js";
import { safeNext } from "../../src/manager/http/pages/session.js";
import { agentPage } from "../../agent/http/page.js";

const GiB = 1024 ** 3;

function res(cpu: number, memGiB: number, diskGiB = 1): Resources {
  return { cpu, memory: memGiB * GiB, disk: diskGiB * GiB };
}

function node(id: string, alloc: Resources, state: NodeInfo["state"] = "ready"): NodeInfo {
  return { id, url: `http://127.0.0.1/${id}`, host: "127.0.0.1", state, capacity: alloc, allocatable: alloc, attributes: {}, cachedPackages: [], portRange: [1, 2], drivers: { lxc: false, process: true }, lastReportAt: 0 };
}

function job(id: string, resources: Resources, extra: Partial<JobSpec> = {}): Job {
  const spec: JobSpec = { name: id, namespace: "default", type: "batch", priority: 100, instances: 1, command: ["true"], env: {}, resources, constraints: [], ports: [], restart: { attempts: 0, delayMs: 0, backoff: 1, maxDelayMs: 0 }, placement: { strategy: "binpack" }, ...extra };
  return { id, spec, source: "name: " + id, status: "running", desired: "run", submittedAt: 1, updatedAt: 1 };
}

function task(jobId: string, index: number, state: TaskInstance["state"], nodeId?: string, extra: Partial<TaskInstance> = {}): TaskInstance {
  return { id: `${jobId}/${index}`, jobId, index, run: 0, desired: "run", state, attempt: 1, restartsOnNode: 0, migrations: 0, createdAt: 1, updatedAt: 1, events: [], ...(nodeId ? { nodeId } : {}), ...extra };
}

describe("page escaping", () => {
  it("esc escapes markup and quote characters", () => {
    assert.equal(esc(`<a href="x" onclick='y'>\`&`), "&#60;a href=&#34;x&#34; onclick=&#39;y&#39;&#62;&#96;&#38;");
    assert.equal(esc(undefined), "");
  });

  it("jsonForScript cannot close its script element", () => {
    const out = jsonForScript({ s: "</script><script>alert(1)</script>\u2028" });
    assert.ok(!out.includes("<"));
    assert.deepEqual(JSON.parse(out), { s: "</script><script>alert(1)</script>\u2028" });
  });

  it("the job page shows hostile command, env, reasons and events as text", () => {
    const evil = "<img src=x onerror=alert(1)>";
    const j = job("j", res(1, 1), { command: ["/bin/sh", "-c", `echo '${evil}'`], env: { A: evil } });
    j.source = evil;
    const t = task("j", 0, "pending", undefined, { reason: `no node fits: ${evil}`, events: [{ at: 1, type: "x", message: evil }] });
    const html = jobPage(j, [t]);
    assert.ok(!html.includes("<img"), html);
    assert.ok(html.includes("&#60;img src=x onerror=alert(1)&#62;"));
    assert.match(html, /Why tasks are pending/);
  });

  it("job rows and the agent page escape ids and reasons", () => {
    assert.ok(!jobRow(job(`a"><b>`, res(1, 1)), []).includes("<b>"));
    const html = agentPage({ id: "<i>x</i>", url: "u", epoch: 1, zookeeper: "connected", leader: { id: "m<1>", url: "javascript:x\"" }, drivers: { lxc: false, process: true }, allocatable: res(1, 1), tasks: [{ taskId: "t/0", attempt: 1, state: "exited", exit: { reason: "<script>" } }] });
    assert.ok(!html.includes("<i>") && !html.includes("<script>") && !html.includes('x"'), html);
  });

  it("the login form keeps only local return paths", () => {
    assert.equal(safeNext("/jobs?status=failed"), "/jobs?status=failed");
    assert.equal(safeNext("//evil.example/"), "/");
    assert.equal(safeNext("https://evil.example/"), "/");
    assert.equal(safeNext("/\\evil.example"), "/");
    assert.ok(loginPage(`/x"><script>`).includes("/x&#34;&#62;&#60;script&#62;"));
  });
});

describe("capacity and fragmentation", () => {
  const nodes = [node("a", res(4, 8)), node("b", res(4, 8)), node("c", res(4, 8), "draining"), node("d", res(16, 64), "lost")];
  const big = job("big", res(2, 4));
  const small = job("small", res(0.5, 1));
  const jobs = new Map([
    ["big", big],
    ["small", small],
  ]);

  it("sums allocatable of live nodes against running and dispatched tasks", () => {
    const tasks = [task("big", 0, "running", "a"), task("big", 1, "dispatched", "a"), task("small", 0, "completed", "b"), task("small", 1, "running", "d")];
    const cap = cellCapacity(nodes, usedByNode(jobs, tasks));
    assert.deepEqual(cap.allocatable, res(12, 24, 3));
    assert.deepEqual(cap.used, res(4, 8, 2), "the completed task and the lost node's task do not count");
  });

  it("counts free resources as stranded on ready nodes where no pending task fits", () => {
    // a: 4-3.5 = 0.5 cpu free, 8-7 = 1 GiB free → the big pending task does not fit; b is empty → fits.
    const tasks = [task("big", 0, "running", "a"), task("small", 0, "running", "a"), task("small", 1, "running", "a"), task("small", 2, "running", "a"), task("big", 1, "pending")];
    const f = fragmentation(nodes, jobs, tasks, usedByNode(jobs, tasks));
    assert.equal(f.pendingTasks, 1);
    assert.deepEqual(f.strandedNodes, ["a"]);
    assert.deepEqual(f.stranded, { cpu: 0.5, memory: 1 * GiB, disk: 0 });
    assert.deepEqual(f.free, { cpu: 4.5, memory: 9 * GiB, disk: 1 * GiB });
  });

  it("strands nothing when nothing is pending, and everything when nothing fits anywhere", () => {
    assert.deepEqual(fragmentation(nodes, jobs, [], new Map()).strandedNodes, []);
    const huge = job("huge", res(32, 1));
    const all = new Map([["huge", huge]]);
    const f = fragmentation(nodes, all, [task("huge", 0, "pending")], new Map());
    assert.deepEqual(f.strandedNodes, ["a", "b"], "draining and lost nodes are not schedulable, so not stranded");
    assert.deepEqual(f.stranded, res(8, 16, 2));
  });

  it("formats task counts in lifecycle order", () => {
    assert.equal(taskCounts([{ state: "failed" }, { state: "running" }, { state: "pending" }, { state: "running" }]), "pending 1 · running 2 · failed 1");
  });
});

describe("the node page's devices", () => {
  it("lists each instance with its attributes and the task holding it", () => {
    const gpuNode: NodeInfo = { ...node("gpu", res(8, 32)), devices: [{ name: "nvidia/gpu", shareable: false, instances: [{ id: "GPU-a", attributes: { model: "T4" } }, { id: "GPU-b", attributes: { model: "T4" } }] }] };
    const holder = task("train", 0, "running", "gpu", { devices: [{ name: "nvidia/gpu", ids: ["GPU-b"] }] });
    const store = { jobs: new Map([["train", job("train", res(1, 1))]]), tasksOnNode: () => [holder] } as unknown as StateStore;
    const html = nodePage(store, gpuNode);
    assert.match(html, /<h2>Devices \(2\)<\/h2>/);
    assert.match(html, /<td>nvidia\/gpu<\/td><td>GPU-a<\/td><td>model=T4<\/td><td>free<\/td>/);
    assert.match(html, /<td>GPU-b<\/td><td>model=T4<\/td><td><a [^>]*>train\/0<\/a><\/td>/);
    assert.doesNotMatch(nodePage(store, node("plain", res(8, 32))), /Devices/);
  });
});
