/**
 * The lifecycle of an alloc's members (docs/allocs.md), pure: when the alloc
 * instance ends and with which exit (agent/driver/alloc-rules.ts), and how the
 * manager records the members an agent reports (src/manager/lifecycle/members.ts).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { allocStep, stoppedMemberExit, type MemberOutcome } from "../../agent/driver/alloc-rules.js";
import type { ExitInfo, MemberStatus, TaskInstance } from "../../src/common/types.js";
import { withReportedMembers } from "../../src/manager/lifecycle/members.js";
import { dispatched } from "../../src/manager/lifecycle/transitions.js";

const ok: ExitInfo = { exitCode: 0, signal: null, oomKilled: false, reason: "exit 0" };
const exit1: ExitInfo = { exitCode: 1, signal: null, oomKilled: false, reason: "exit 1" };
const oom: ExitInfo = { exitCode: 137, signal: "SIGKILL", oomKilled: true, reason: "oom-killed" };
const term: ExitInfo = { exitCode: 143, signal: "SIGTERM", oomKilled: false, reason: "killed by SIGTERM" };
const lost: ExitInfo = { exitCode: null, signal: null, oomKilled: false, reason: "exit status lost: wrapper gone" };

const running = (name: string): MemberOutcome => ({ name });
const exited = (name: string, exit: ExitInfo, stoppedByAlloc = false): MemberOutcome => ({ name, exit, stoppedByAlloc });

describe("alloc member rules", () => {
  test("the alloc runs while its members run", () => {
    assert.deepEqual(allocStep([running("app"), running("sidecar")]), { kind: "wait" });
  });

  test("a member exiting 0 ends alone: the others keep running", () => {
    assert.deepEqual(allocStep([exited("init", ok), running("app")]), { kind: "wait" });
  });

  test("the alloc succeeds once every member exited 0", () => {
    assert.deepEqual(allocStep([exited("a", ok), exited("b", ok), exited("c", ok)]), { kind: "exited", exit: { exitCode: 0, signal: null, oomKilled: false, reason: "exit 0 (all 3 tasks)" } });
  });

  test("a failing member stops the others", () => {
    assert.deepEqual(allocStep([exited("app", exit1), running("sidecar")]), { kind: "stop-others", cause: "app" });
  });

  test("once all are down, the cause's exit is the alloc's, named after it; the members it stopped are not causes", () => {
    const step = allocStep([exited("hog", oom), exited("app", term, true), exited("idle", term, true)]);
    assert.deepEqual(step, { kind: "exited", exit: { exitCode: 137, signal: "SIGKILL", oomKilled: true, reason: "task hog: oom-killed" } });
  });

  test("the first failure is the cause, whatever fails after it", () => {
    const step = allocStep([exited("a", ok), exited("b", exit1), exited("c", oom)]);
    assert.equal(step.kind === "exited" && step.exit.reason, "task b: exit 1");
  });

  test("a member whose exit status was lost fails the alloc", () => {
    assert.deepEqual(allocStep([exited("app", lost), running("sidecar")]), { kind: "stop-others", cause: "app" });
  });

  test("a member stopped by the alloc says which member's failure stopped it", () => {
    assert.equal(stoppedMemberExit(term, "hog").reason, "stopped after task hog failed (killed by SIGTERM)");
  });
});

describe("members on the task record", () => {
  const NOW = 5000;
  const task: TaskInstance = { id: "web/0", jobId: "web", index: 0, run: 0, desired: "run", state: "running", attempt: 1, restartsOnNode: 0, migrations: 0, nodeId: "n1", createdAt: 0, updatedAt: 0, events: [] };
  const runningMembers: MemberStatus[] = [
    { name: "app", state: "running" },
    { name: "hog", state: "running" },
  ];

  test("reported members are recorded; the same report again changes nothing", () => {
    const next = withReportedMembers(task, runningMembers, NOW)!;
    assert.deepEqual(next.members, runningMembers);
    assert.equal(withReportedMembers(next, runningMembers, NOW + 1), undefined);
    assert.equal(withReportedMembers(next, undefined, NOW + 1), undefined, "a report without members (a plain task) changes nothing");
  });

  test("a member's exit is an event against that member; an OOM kill is its own event type", () => {
    const before = withReportedMembers(task, runningMembers, NOW)!;
    const next = withReportedMembers(before, [{ name: "app", state: "exited", exit: stoppedMemberExit(term, "hog") }, { name: "hog", state: "exited", exit: oom }], NOW + 1)!;
    assert.deepEqual(
      next.events.map((e) => [e.type, e.message]),
      [
        ["member-exited", "task app: stopped after task hog failed (killed by SIGTERM)"],
        ["member-oom-killed", "task hog: oom-killed"],
      ],
    );
    assert.equal(withReportedMembers(next, next.members, NOW + 2), undefined, "an exit is told once");
  });

  test("a new attempt starts without the previous attempt's members", () => {
    const withMembers = withReportedMembers(task, runningMembers, NOW)!;
    assert.equal(dispatched({ ...withMembers, state: "pending" }, "n2", NOW + 1).members, undefined);
  });
});
