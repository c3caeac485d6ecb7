import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import type { ExitInfo, Job, TaskInstance } from "../../src/common/types.js";
import { decideAfterExit, MAX_MIGRATIONS, restartDelay } from "../../src/manager/lifecycle/restart-policy.js";
import { deriveJobStatus, isLive } from "../../src/manager/primary/job-status.js";

const batch = parseTaskFile("name: b\ntype: batch\ncommand: [x]\nrestart: { attempts: 2, delay: 1s, backoff: 2, maxDelay: 3s }\n");
const service = parseTaskFile("name: s\ntype: service\ncommand: [x]\nrestart: { attempts: 1, delay: 100ms }\n");
const exit = (code: number | null, extra: Partial<ExitInfo> = {}): ExitInfo => ({ exitCode: code, signal: null, oomKilled: false, reason: `exit ${code}`, ...extra });

describe("the restart policy decides what follows an exit", () => {
  test("a batch task that exits 0 is complete", () => {
    assert.deepEqual(decideAfterExit(batch, { restartsOnNode: 0, migrations: 0 }, exit(0)), { action: "complete" });
  });
  test("a failure restarts on the same node with exponential backoff capped at maxDelay", () => {
    assert.deepEqual(decideAfterExit(batch, { restartsOnNode: 0, migrations: 0 }, exit(1)), { action: "restart-same-node", delayMs: 1000 });
    assert.deepEqual(decideAfterExit(batch, { restartsOnNode: 1, migrations: 0 }, exit(1)), { action: "restart-same-node", delayMs: 2000 });
    assert.equal(restartDelay(batch, 5), 3000);
  });
  test("restarts exhausted on a node → migrate; migrations exhausted → failed", () => {
    assert.equal(decideAfterExit(batch, { restartsOnNode: 2, migrations: 0 }, exit(1)).action, "migrate");
    const d = decideAfterExit(batch, { restartsOnNode: 2, migrations: MAX_MIGRATIONS }, exit(1));
    assert.equal(d.action, "fail");
    assert.match((d as { reason: string }).reason, /exit 1; 2 restarts and 2 migrations exhausted/);
  });
  test("an OOM kill or a signal is a failure even with status 0", () => {
    assert.equal(decideAfterExit(batch, { restartsOnNode: 0, migrations: 0 }, exit(0, { oomKilled: true })).action, "restart-same-node");
    assert.equal(decideAfterExit(batch, { restartsOnNode: 0, migrations: 0 }, exit(0, { signal: "SIGKILL" })).action, "restart-same-node");
  });
  test("a service is restarted even after a clean exit (services keep running)", () => {
    assert.equal(decideAfterExit(service, { restartsOnNode: 0, migrations: 0 }, exit(0)).action, "restart-same-node");
  });
});

describe("a job's status is derived from its tasks", () => {
  const job = (spec = batch, desired: "run" | "stop" = "run"): Job => ({ id: "j", spec: { ...spec, instances: 2 }, source: "", status: "pending", desired, submittedAt: 0, updatedAt: 0 });
  const task = (state: TaskInstance["state"]): TaskInstance => ({ id: "j/0", jobId: "j", index: 0, run: 0, desired: "run", state, attempt: 1, restartsOnNode: 0, migrations: 0, createdAt: 0, updatedAt: 0, events: [] });
  test("batch: complete only when every instance completed", () => {
    assert.equal(deriveJobStatus(job(), [task("completed"), task("completed")]), "complete");
    assert.equal(deriveJobStatus(job(), [task("completed"), task("running")]), "running");
    assert.equal(deriveJobStatus(job(), [task("completed"), task("failed")]), "failed");
    assert.equal(deriveJobStatus(job(), [task("pending")]), "pending");
  });
  test("killed: dead once every task is terminal", () => {
    assert.equal(deriveJobStatus(job(batch, "stop"), [task("killed"), task("running")]), "running");
    assert.equal(deriveJobStatus(job(batch, "stop"), [task("killed"), task("completed")]), "dead");
  });
  test("a submission may replace a job only when it is not live: a finished batch job or a stopped one", () => {
    assert.equal(isLive(job(), [task("completed"), task("completed")]), false);
    assert.equal(isLive(job(), [task("completed"), task("running")]), true);
    assert.equal(isLive(job(service), [task("failed"), task("failed")]), true, "a service wants to run until killed");
    assert.equal(isLive(job(service, "stop"), [task("killed"), task("killed")]), false);
    assert.equal(isLive(job(service, "stop"), [task("killed"), task("running")]), true, "still stopping");
  });
});
