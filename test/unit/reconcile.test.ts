import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AgentReport } from "../../src/common/protocol.js";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { dispatched } from "../../src/manager/lifecycle/transitions.js";
import { reconcileReport, type ReconcileOptions } from "../../src/manager/primary/reconcile.js";
import { makeSpec } from "./scheduler-harness.js";

/**
 * Reconciling an agent's report is level-triggered, and a report may be
 * older than the orders it is reconciled against: a report built just before
 * a dispatch arrived can wait seconds in a busy primary. A task missing from
 * a report is therefore sent again as the same attempt, never started as a
 * new one, so no instance runs twice whatever the reports' order.
 */

const GRACE = 10_000;
const PAST_TAKEOVER: ReconcileOptions = { presumeMissing: true, missingGraceMs: GRACE };
const job = { id: "batch", spec: { ...makeSpec("batch", { cpu: 0.1, memory: 1024 ** 2 }), type: "batch" as const, instances: 1 }, source: "", status: "running", desired: "run", submittedAt: 0, updatedAt: 0 } as Job;
const pending: TaskInstance = { id: "batch/0", jobId: "batch", index: 0, run: 0, desired: "run", state: "pending", attempt: 0, restartsOnNode: 0, migrations: 0, createdAt: 0, updatedAt: 0, events: [] };

function viewWith(t: TaskInstance) {
  return { jobs: new Map([[job.id, job]]), task: (jobId: string, index: number) => (jobId === t.jobId && index === t.index ? t : undefined), tasksOnNode: (node: string) => (t.nodeId === node ? [t] : []) };
}

function report(tasks: AgentReport["tasks"]): AgentReport {
  return { agentId: "n1", cachedPackages: [], tasks } as AgentReport;
}

const exitedReport = (attempt: number) => report([{ taskId: "batch/0", attempt, state: "exited", exit: { exitCode: 0, signal: null, oomKilled: false, reason: "exit 0" }, finishedAt: 2_000 }]);

describe("reconciling a report against the dispatched tasks", () => {
  const sent = dispatched(pending, "n1", 1_000);

  test("a report built before the order arrived, reconciled past the grace, sends the same attempt again", () => {
    const d = reconcileReport(report([]), viewWith(sent), 1_000 + GRACE, PAST_TAKEOVER);
    assert.deepEqual(d.updates, []);
    assert.deepEqual(d.resends.map((t) => [t.id, t.state, t.attempt, t.nodeId, t.dispatchedAt]), [["batch/0", "dispatched", 1, "n1", 1_000 + GRACE]]);
    assert.equal(d.resends[0]!.events.at(-1)?.type, "resent");
  });

  test("the agent's later report of that attempt's exit is recorded: the attempt ran once", () => {
    const resent = reconcileReport(report([]), viewWith(sent), 1_000 + GRACE, PAST_TAKEOVER).resends[0]!;
    const d = reconcileReport(exitedReport(1), viewWith(resent), 1_000 + GRACE + 500, PAST_TAKEOVER);
    assert.deepEqual(d.updates.map((t) => [t.state, t.attempt]), [["completed", 1]]);
    assert.deepEqual([d.resends, d.stops], [[], []]);
  });

  test("within the grace, or before agents have had time to report after a takeover, a missing task is left alone", () => {
    assert.deepEqual(reconcileReport(report([]), viewWith(sent), 1_000 + GRACE - 1, PAST_TAKEOVER).resends, []);
    const duringTakeover = reconcileReport(report([]), viewWith(sent), 1_000 + 5 * GRACE, { ...PAST_TAKEOVER, presumeMissing: false });
    assert.deepEqual([duringTakeover.resends, duringTakeover.updates], [[], []]);
  });

  test("a running task the agent stops reporting is sent again too, not rescheduled elsewhere", () => {
    const running: TaskInstance = { ...sent, state: "running", startedAt: 1_500 };
    const d = reconcileReport(report([]), viewWith(running), 1_000 + GRACE, PAST_TAKEOVER);
    assert.deepEqual(d.resends.map((t) => [t.state, t.attempt, t.nodeId]), [["running", 1, "n1"]]);
  });

  test("a task being stopped that the agent no longer reports is recorded killed, and nothing is sent", () => {
    const stopping: TaskInstance = { ...sent, desired: "stop" };
    const d = reconcileReport(report([]), viewWith(stopping), 1_000 + GRACE, PAST_TAKEOVER);
    assert.deepEqual(d.updates.map((t) => [t.state, t.desired]), [["killed", "stop"]]);
    assert.deepEqual(d.resends, []);
  });

  test("an attempt of an earlier task of the same id (its job submitted again) is not this task's: stopped if it runs, never recorded", () => {
    const earlier = sent.createdAt - 1;
    const live = reconcileReport(report([{ taskId: "batch/0", attempt: 1, incarnation: earlier, state: "running" }]), viewWith(sent), 1_500, PAST_TAKEOVER);
    assert.deepEqual(live.stops.map((s) => [s.task.id, s.task.attempt]), [["batch/0", 1]]);
    assert.deepEqual([live.updates, live.observations], [[], []]);
    const gone = reconcileReport(report([{ taskId: "batch/0", attempt: 1, incarnation: earlier, state: "exited", exit: { exitCode: 0, signal: null, oomKilled: false, reason: "exit 0" } }]), viewWith(sent), 1_500, PAST_TAKEOVER);
    assert.deepEqual([gone.updates, gone.stops], [[], []]);
    const same = reconcileReport(report([{ taskId: "batch/0", attempt: 1, incarnation: sent.createdAt, state: "running" }]), viewWith(sent), 1_500, PAST_TAKEOVER);
    assert.deepEqual(same.observations.map((t) => t.state), ["running"]);
  });

  test("an attempt the cell no longer wants on the node is stopped, and an exited one is only acknowledged", () => {
    const d = reconcileReport(report([{ taskId: "batch/0", attempt: 0, state: "running" }]), viewWith(sent), 1_000 + GRACE, PAST_TAKEOVER);
    assert.deepEqual(d.stops.map((s) => [s.task.id, s.task.attempt, s.why]), [["batch/0", 0, "not assigned to this node"]]);
    const old = reconcileReport(exitedReport(0), viewWith(sent), 1_000, PAST_TAKEOVER);
    assert.deepEqual([old.stops, old.updates], [[], []]);
  });
});
