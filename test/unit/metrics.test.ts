/**
 * The metrics module without a cell: what each task write counts as (taken
 * from the lifecycle's own transitions), the manager's and agent's
 * expositions passing promtool with every family present before anything
 * happened, and the shipped dashboard and alert rules naming only families
 * that exist.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import type { ExitInfo, Job, JobSpec, TaskInstance } from "../../src/common/types.js";
import * as lifecycle from "../../src/manager/lifecycle/transitions.js";
import { AgentMetrics } from "../../src/metrics/agent.js";
import { ManagerMetrics } from "../../src/metrics/manager.js";
import { taskTransition } from "../../src/metrics/task-transitions.js";
import { parseExposition, promtool, total } from "../harness/metrics.js";

const NOW = 1_000_000;
const service = parseTaskFile("name: web\ntype: service\ncommand: [x]\nrestart: { attempts: 1, delay: 1s }\n");
const jobOf = (spec: JobSpec): Job => ({ id: spec.name, spec, source: "", status: "running", desired: "run", submittedAt: 0, updatedAt: 0 });
const exit1: ExitInfo = { exitCode: 1, signal: null, oomKilled: false, reason: "exit 1" };

function record(state: TaskInstance["state"], extra: Partial<TaskInstance> = {}): TaskInstance {
  return { id: "web/0", jobId: "web", index: 0, run: 0, desired: "run", state, attempt: 1, restartsOnNode: 0, migrations: 0, nodeId: "n1", lastNodeId: "n1", createdAt: NOW - 4000, updatedAt: NOW - 1000, events: [], ...extra };
}

describe("what a task write counts as", () => {
  test("a restart in place, then a migration once the node's restarts are exhausted", () => {
    const first = record("running");
    const restarted = lifecycle.exited(first, jobOf(service), exit1, undefined, NOW).next;
    assert.deepEqual(taskTransition(first, restarted), { restart: true, migration: false, preemption: false });
    const again = { ...record("running", { restartsOnNode: 1, attempt: 2 }), events: restarted.events };
    assert.deepEqual(taskTransition(again, lifecycle.exited(again, jobOf(service), exit1, undefined, NOW + 5).next), { restart: false, migration: true, preemption: false });
  });

  test("drained and lost nodes move the task: migrations; a preempted task is a preemption", () => {
    const t = record("running");
    assert.equal(taskTransition(t, lifecycle.drained(t, NOW)).migration, true);
    assert.equal(taskTransition(t, lifecycle.nodeLost(t, jobOf(service), "n1", NOW).next).migration, true);
    assert.deepEqual(taskTransition(t, lifecycle.preempted(t, "big/0", "n1", NOW)), { restart: false, migration: false, preemption: true });
  });

  test("submit-to-running: only the first attempt's first running record, from the record's creation", () => {
    const dispatched = record("dispatched");
    const running = lifecycle.reportedAlive(dispatched, { taskId: "web/0", attempt: 1, state: "running" }, NOW)!;
    assert.equal(taskTransition(dispatched, running).submitToRunningMs, 4000);
    assert.equal(taskTransition(running, { ...running, updatedAt: NOW + 1 }).submitToRunningMs, undefined, "still running: not again");
    const second = record("dispatched", { attempt: 2 });
    assert.equal(taskTransition(second, { ...second, state: "running", updatedAt: NOW }).submitToRunningMs, undefined, "a later attempt is a restart, not a submission");
  });

  test("a write that adds no event (a new reason while pending) counts as nothing", () => {
    const pending = record("pending", { nodeId: undefined, events: [{ at: 1, type: "lost", message: "node n1 lost; rescheduling" }] });
    assert.deepEqual(taskTransition(pending, { ...pending, reason: "no node fits" }), { restart: false, migration: false, preemption: false });
  });
});

describe("expositions", () => {
  test("a manager serves every family before anything happened, and promtool accepts it", async () => {
    const text = await new ManagerMetrics().registry.metrics();
    promtool(["check", "metrics"], text);
    const { families } = parseExposition(text);
    for (const f of ["torca_placement_duration_seconds", "torca_fencing_events_total", "torca_alerts_failed_total", "torca_http_request_duration_seconds", "process_cpu_seconds_total"]) assert.ok(families.has(f), f);
  });

  test("rounds, task writes, fencing and alert deliveries land in their families", async () => {
    const m = new ManagerMetrics();
    m.round({ writes: [], stops: [], dispatches: [record("dispatched"), record("dispatched")], alerts: [], unplaced: new Map(), more: false }, 12);
    const t = record("running");
    m.taskWritten(t, lifecycle.exited(t, jobOf(service), exit1, undefined, NOW).next);
    m.fenced("deposed");
    m.alertDelivery({ status: "sent", channel: "email" } as Parameters<ManagerMetrics["alertDelivery"]>[0]);
    m.alertDelivery({ status: "retrying", channel: "sms" } as Parameters<ManagerMetrics["alertDelivery"]>[0]);
    const failing = m.timedDispatcher({ start: () => Promise.reject(new Error("refused")), stop: () => Promise.resolve(), signal: () => Promise.resolve() });
    await assert.rejects(failing.start("http://n1", [{} as Parameters<typeof failing.start>[1][number]]));
    const text = await m.registry.metrics();
    promtool(["check", "metrics"], text);
    const { samples } = parseExposition(text);
    assert.equal(total(samples, "torca_placements_total"), 2);
    assert.equal(total(samples, "torca_placement_duration_seconds_count"), 1);
    assert.equal(total(samples, "torca_placement_duration_seconds_bucket", { le: "0.025" }), 1, "12 ms falls in the 25 ms bucket");
    assert.equal(total(samples, "torca_restarts_total"), 1);
    assert.equal(total(samples, "torca_fencing_events_total"), 1);
    assert.equal(total(samples, "torca_alerts_sent_total", { channel: "email" }), 1);
    assert.equal(total(samples, "torca_alerts_failed_total"), 0, "a retry is not a failure");
    assert.equal(total(samples, "torca_dispatch_failures_total"), 1);
    assert.equal(total(samples, "torca_dispatch_duration_seconds_count", { result: "error" }), 1);
  });

  test("an agent's per-task usage and launch latency come from its task table and change events", async () => {
    const tasks = [{ taskId: "web/0", attempt: 1, state: "running" as const, usage: { cpuNs: 2.5e9, memoryBytes: 1024, pids: 3 } }];
    const m = new AgentMetrics({ tasks: () => tasks, packages: () => ({ misses: 2, hits: 5, coalesced: 0, bytesTransferred: 4096, integrityFailures: 0 }) });
    m.taskChanged({ dispatch: { taskId: "web/0", attempt: 1 }, state: "starting" });
    m.taskChanged({ dispatch: { taskId: "web/0", attempt: 1 }, state: "running" });
    m.taskChanged({ dispatch: { taskId: "web/1", attempt: 1 }, state: "starting" });
    m.taskChanged({ dispatch: { taskId: "web/1", attempt: 1 }, state: "exited", error: "no such package" });
    const text = await m.registry.metrics();
    promtool(["check", "metrics"], text);
    const { samples } = parseExposition(text);
    assert.equal(total(samples, "torca_agent_tasks_running"), 1);
    assert.equal(total(samples, "torca_agent_task_cpu_seconds_total", { task: "web/0" }), 2.5);
    assert.equal(total(samples, "torca_agent_task_memory_bytes", { task: "web/0" }), 1024);
    assert.equal(total(samples, "torca_agent_task_pids", { task: "web/0" }), 3);
    assert.equal(total(samples, "torca_agent_task_launches_total", { result: "started" }), 1);
    assert.equal(total(samples, "torca_agent_task_launches_total", { result: "failed" }), 1);
    assert.equal(total(samples, "torca_agent_launch_duration_seconds_count"), 1);
    assert.equal(total(samples, "torca_agent_package_pulls_total"), 2);
  });
});

describe("the shipped dashboard and alert rules", () => {
  const root = new URL("../../../", import.meta.url);
  const known = async () => {
    const m = parseExposition(await new ManagerMetrics().registry.metrics()).families;
    const a = parseExposition(await new AgentMetrics({ tasks: () => [], packages: () => undefined }).registry.metrics()).families;
    // The view gauges of src/manager/http/metrics.ts, rendered per caller outside the registry.
    return new Set([...m.keys(), ...a.keys(), "torca_manager_is_primary", "torca_epoch", "torca_nodes", "torca_jobs", "torca_tasks", "torca_node_allocatable_cpu_cores", "torca_node_allocatable_memory_bytes", "up"]);
  };
  const namesIn = (text: string) => new Set([...text.matchAll(/\b((?:torca|process|nodejs)_[a-z_]+)/g)].map((x) => x[1]!.replace(/_(bucket|count|sum)$/, "")));

  test("the rules pass promtool check rules and name only families Torca serves", async () => {
    const path = new URL("config/prometheus/torca-rules.yml", root).pathname;
    promtool(["check", "rules", path]);
    const families = await known();
    for (const n of namesIn(readFileSync(path, "utf8"))) assert.ok(families.has(n), `torca-rules.yml names ${n}, which no daemon serves`);
  });

  test("every dashboard query names only families Torca serves", async () => {
    const dash = JSON.parse(readFileSync(new URL("config/grafana/torca-dashboard.json", root), "utf8")) as { panels: { title: string; targets: { expr: string }[] }[] };
    const families = await known();
    assert.ok(dash.panels.length >= 10);
    for (const p of dash.panels) for (const t of p.targets) for (const n of namesIn(t.expr)) assert.ok(families.has(n), `panel "${p.title}" queries ${n}, which no daemon serves`);
  });
});
