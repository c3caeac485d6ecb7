/**
 * The task lifecycle, specified transition by transition: each takes the
 * record, what happened and `now`, and returns the next record (and the alerts
 * to raise once it is durable). No ZooKeeper, no clock.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import type { ExitInfo, Job, JobSpec, TaskInstance } from "../../src/common/types.js";
import * as lifecycle from "../../src/manager/lifecycle/transitions.js";

const NOW = 1_000_000;
const service = parseTaskFile("name: web\ntype: service\ncommand: [x]\nrestart: { attempts: 2, delay: 1s, backoff: 2, maxDelay: 10s }\n");
const batch = parseTaskFile("name: crunch\ntype: batch\ncommand: [x]\nrestart: { attempts: 1, delay: 500ms }\n");
const jobOf = (spec: JobSpec): Job => ({ id: spec.name, spec, source: "", status: "running", desired: "run", submittedAt: 0, updatedAt: 0 });
const exitWith = (code: number | null, extra: Partial<ExitInfo> = {}): ExitInfo => ({ exitCode: code, signal: null, oomKilled: false, reason: `exit ${code}`, ...extra });

function running(spec: JobSpec, extra: Partial<TaskInstance> = {}): TaskInstance {
  return { id: `${spec.name}/0`, jobId: spec.name, index: 0, run: 0, desired: "run", state: "running", attempt: 3, restartsOnNode: 0, migrations: 0, nodeId: "n1", lastNodeId: "n1", createdAt: 0, updatedAt: 0, events: [], ...extra };
}

describe("after an exit", () => {
  test("a service restarts in place after the backoff, keeping its node as sticky", () => {
    const { next, alerts } = lifecycle.exited(running(service), jobOf(service), exitWith(1), NOW - 5, NOW);
    assert.equal(next.state, "pending");
    assert.equal(next.stickyNode, "n1");
    assert.equal(next.restartsOnNode, 1);
    assert.equal(next.notBefore, NOW + 1000);
    assert.equal(next.finishedAt, NOW - 5);
    assert.deepEqual(alerts, []);
    assert.equal(lifecycle.exited(running(service, { restartsOnNode: 1 }), jobOf(service), exitWith(1), undefined, NOW).next.notBefore, NOW + 2000);
  });

  test("restarts exhausted on a node: it migrates, avoiding that node from then on", () => {
    const { next } = lifecycle.exited(running(service, { restartsOnNode: 2, avoidNodes: ["n0"] }), jobOf(service), exitWith(1), undefined, NOW);
    assert.equal(next.state, "pending");
    assert.equal(next.stickyNode, undefined);
    assert.equal(next.restartsOnNode, 0);
    assert.equal(next.migrations, 1);
    assert.deepEqual(next.avoidNodes, ["n0", "n1"]);
  });

  test("a batch task that exits 0 is completed; one that runs out of migrations fails with an alert", () => {
    assert.equal(lifecycle.exited(running(batch), jobOf(batch), exitWith(0), undefined, NOW).next.state, "completed");
    const { next, alerts } = lifecycle.exited(running(batch, { restartsOnNode: 1, migrations: 2 }), jobOf(batch), exitWith(3), undefined, NOW);
    assert.equal(next.state, "failed");
    assert.match(next.reason ?? "", /exit 3; 1 restarts and 2 migrations exhausted/);
    assert.deepEqual(alerts.map((a) => a.kind), ["task-failed"]);
  });

  test("an OOM kill is alerted, and restarts like any failure", () => {
    const { next, alerts } = lifecycle.exited(running(service), jobOf(service), exitWith(null, { oomKilled: true }), undefined, NOW);
    assert.equal(next.state, "pending");
    assert.deepEqual(alerts.map((a) => a.kind), ["task-oom-killed"]);
  });

  test("a task being stopped, or of a job that is gone, is killed", () => {
    assert.equal(lifecycle.exited(running(service, { desired: "stop" }), jobOf(service), exitWith(0), undefined, NOW).next.state, "killed");
    assert.equal(lifecycle.exited(running(service), undefined, exitWith(0), undefined, NOW).next.state, "killed");
  });
});

describe("dispatch", () => {
  test("a dispatch is a new attempt on the node, forgetting backoff, sticky node, reason and last exit", () => {
    const pending: TaskInstance = { ...running(service), state: "pending", stickyNode: "n1", notBefore: NOW, reason: "restarting", exit: exitWith(1) };
    const next = lifecycle.dispatched(pending, "n1", NOW);
    assert.deepEqual(
      { state: next.state, nodeId: next.nodeId, lastNodeId: next.lastNodeId, attempt: next.attempt, dispatchedAt: next.dispatchedAt, stickyNode: next.stickyNode, notBefore: next.notBefore, reason: next.reason, exit: next.exit },
      { state: "dispatched", nodeId: "n1", lastNodeId: "n1", attempt: 4, dispatchedAt: NOW, stickyNode: undefined, notBefore: undefined, reason: undefined, exit: undefined },
    );
    assert.equal(next.events.at(-1)?.message, "attempt 4 on n1");
  });

  test("an attempt runs the job's current version: an older instance that restarts is recorded as that version from then on", () => {
    const old: TaskInstance = { ...running(service), state: "pending", version: 1, versionSince: 0 };
    const next = lifecycle.dispatched(old, "n1", NOW, 2);
    assert.deepEqual([next.version, next.versionSince], [2, NOW]);
    const same = lifecycle.dispatched({ ...old, version: 2 }, "n1", NOW, 2);
    assert.deepEqual([same.version, same.versionSince], [2, 0], "an instance already of that version keeps its since-time");
  });

  test("a failed dispatch goes back to pending anywhere, retried after a second", () => {
    const next = lifecycle.dispatchFailed({ ...running(service), state: "dispatched" }, "n1", "connection refused", NOW);
    assert.equal(next.state, "pending");
    assert.equal(next.nodeId, undefined);
    assert.equal(next.notBefore, NOW + 1000);
    assert.equal(next.reason, "dispatch to n1 failed: connection refused");
  });

  test("the agent reporting the attempt running records it once", () => {
    const t = { ...running(service), state: "dispatched" as const };
    const next = lifecycle.reportedAlive(t, { taskId: t.id, attempt: 3, state: "running", startedAt: NOW - 1 }, NOW);
    assert.equal(next?.state, "running");
    assert.equal(next?.startedAt, NOW - 1);
    assert.equal(lifecycle.reportedAlive(next!, { taskId: t.id, attempt: 3, state: "running" }, NOW), undefined);
  });
});

describe("the cell takes a task away", () => {
  test("a lost node reschedules its tasks (alerting) and loses those being stopped", () => {
    const moved = lifecycle.nodeLost(running(service), jobOf(service), "n1", NOW);
    assert.equal(moved.next.state, "pending");
    assert.equal(moved.next.nodeId, undefined);
    assert.deepEqual(moved.alerts.map((a) => a.kind), ["task-lost"]);
    const gone = lifecycle.nodeLost(running(service, { desired: "stop" }), jobOf(service), "n1", NOW);
    assert.equal(gone.next.state, "lost");
    assert.equal(gone.next.finishedAt, NOW);
  });

  test("drained and preempted tasks go back to pending anywhere, saying why", () => {
    assert.equal(lifecycle.drained(running(service), NOW).reason, "migrating: node n1 draining");
    assert.equal(lifecycle.preempted(running(service), "big/0", "n1", NOW).reason, "preempted by big/0");
    for (const t of [lifecycle.drained(running(service), NOW), lifecycle.preempted(running(service), "big/0", "n1", NOW)]) {
      assert.deepEqual([t.state, t.nodeId, t.restartsOnNode], ["pending", undefined, 0]);
    }
  });

  test("a task its node does not report is sent there again as the same attempt (its report may predate the order)", () => {
    const before = { ...running(service), state: "dispatched" as const, dispatchedAt: NOW - 60_000 };
    const { next, resend } = lifecycle.missingFromNode(before, "n1", NOW);
    assert.equal(resend, true);
    assert.deepEqual([next.state, next.nodeId, next.attempt, next.dispatchedAt], ["dispatched", "n1", before.attempt, NOW]);
    assert.equal(next.events.at(-1)?.type, "resent");
  });

  test("a task being stopped that its node no longer reports is killed, not rescheduled", () => {
    const { next: t, resend } = lifecycle.missingFromNode(running(service, { desired: "stop" }), "n1", NOW);
    assert.equal(resend, false);
    assert.deepEqual([t.state, t.desired, t.finishedAt], ["killed", "stop", NOW]);
  });

  test("a killed job: pending tasks are killed at once, live ones asked to stop, finished ones left alone", () => {
    assert.equal(lifecycle.jobKilled({ ...running(service), state: "pending" }, NOW)?.state, "killed");
    const stopping = lifecycle.jobKilled(running(service), NOW);
    assert.deepEqual([stopping?.state, stopping?.desired], ["running", "stop"]);
    assert.equal(lifecycle.jobKilled({ ...running(service), state: "completed" }, NOW), undefined);
    assert.equal(lifecycle.jobKilled(running(service, { desired: "stop" }), NOW), undefined);
  });

  test("failed on every usable node: a service starts over anywhere, a batch task fails", () => {
    const t = { ...running(service), state: "pending" as const, avoidNodes: ["n1", "n2"] };
    const retry = lifecycle.failedEverywhere(t, jobOf(service), NOW);
    assert.deepEqual([retry.next.state, retry.next.avoidNodes, retry.next.notBefore], ["pending", undefined, NOW + 1000]);
    const failed = lifecycle.failedEverywhere({ ...t, jobId: "crunch" }, jobOf(batch), NOW);
    assert.equal(failed.next.state, "failed");
    assert.match(failed.next.reason ?? "", /failed on every usable node \(n1, n2\)/);
    assert.deepEqual(failed.alerts.map((a) => a.kind), ["task-failed"]);
  });

  test("a record keeps only the latest events", () => {
    let t = running(service);
    for (let i = 0; i < lifecycle.MAX_EVENTS + 5; i++) t = lifecycle.withEvent(t, "x", `event ${i}`, NOW + i);
    assert.equal(t.events.length, lifecycle.MAX_EVENTS);
    assert.equal(t.events.at(-1)?.message, `event ${lifecycle.MAX_EVENTS + 4}`);
  });
});
