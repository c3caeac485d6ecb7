import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { jobPage } from "../../src/manager/http/pages/job.js";
import { describeMetrics } from "../../src/manager/scheduler/index.js";
import { makeSpec } from "./scheduler-harness.js";

const job: Job = { id: "web", spec: makeSpec("web"), source: "", status: "pending", desired: "run", submittedAt: 0, updatedAt: 0 };
const pending: TaskInstance = { id: "web/0", jobId: "web", index: 0, run: 0, desired: "run", state: "pending", attempt: 0, restartsOnNode: 0, migrations: 0, createdAt: 0, updatedAt: 0, events: [], reason: "no node fits: 1 node: static port 8080 in use" };
const metrics = { nodesEvaluated: 3, nodesFiltered: { constraints: { "constraint os = linux failed": 1 }, "avoided-nodes": { "avoided after failures": 1 } }, nodesExhausted: { "port 8080": 1 }, candidates: [] };

describe("why a task is pending", () => {
  test("the metrics read as one line", () => {
    assert.equal(describeMetrics(metrics), "3 nodes evaluated; filtered: constraints 1, avoided-nodes 1; exhausted: port 8080 1");
    assert.equal(describeMetrics({ nodesEvaluated: 1, nodesFiltered: {}, nodesExhausted: {}, candidates: [] }), "1 node evaluated");
  });

  test("the job page shows the last round's metrics under the reason, when the primary has them", () => {
    assert.match(jobPage(job, [pending], (id) => (id === "web/0" ? metrics : undefined)), /static port 8080 in use<br><small class="metrics">3 nodes evaluated; filtered: constraints 1, avoided-nodes 1; exhausted: port 8080 1<\/small>/);
    assert.doesNotMatch(jobPage(job, [pending]), /nodes evaluated/);
  });

  test("the job page lists the smallest changes that would fit now, when the primary worked them out", () => {
    const changes = [{ text: "fits agent-3 with memory ≤ 23GiB", nodes: 1, nodeIds: ["agent-3"], cost: 0.2 }];
    assert.match(jobPage(job, [pending], () => undefined, changes), /Smallest change that would fit now:<\/p><ul id="smallest-change"><li>fits agent-3 with memory ≤ 23GiB<\/li><\/ul>/);
    assert.doesNotMatch(jobPage(job, [pending]), /Smallest change/);
  });
});
