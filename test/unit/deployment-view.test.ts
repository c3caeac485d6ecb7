/** What `torca deployment status` and the job page show of a rollout: per version, instances wanted, healthy, unhealthy, canaries, stopping. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import type { Deployment, Job, TaskInstance } from "../../src/common/types.js";
import { deploymentView } from "../../src/manager/deployment/view.js";
import { deploymentCard } from "../../src/manager/http/pages/job.js";

const NOW = 1_000_000;
const spec = parseTaskFile("name: web\ncommand: [/bin/web]\ninstances: 3\nports: [{ name: http, check: { type: http } }]\nservice: { name: web.x }\nupdate: { minHealthyTime: 1s, canary: 1 }\n");
const deployment: Deployment = { id: "d1", version: 2, status: "awaiting-promotion", description: "1 canaries healthy; waiting for <promote>", startedAt: 0, progressAt: 0, healthy: 1, promoted: false };
const job: Job = { id: "web", spec, source: "", status: "running", desired: "run", submittedAt: 0, updatedAt: 0, version: 2, deployment };

function task(index: number, version: number, extra: Partial<TaskInstance> = {}): TaskInstance {
  return { id: `web/${index}`, jobId: "web", index, run: 0, desired: "run", state: "running", attempt: 1, restartsOnNode: 0, migrations: 0, createdAt: 0, updatedAt: 0, events: [], version, healthy: true, healthySince: 0, ...extra };
}

const tasks = [task(0, 1), task(1, 1), task(2, 1, { healthy: false, healthySince: undefined }), task(3, 2, { canary: true }), task(4, 0, { desired: "stop" }), task(5, 0, { state: "killed", desired: "stop" })];

describe("the deployment view", () => {
  test("counts per version, newest first; finished instances are left out", () => {
    assert.deepEqual(deploymentView(job, tasks, NOW).versions, [
      { version: 2, instances: 1, healthy: 1, unhealthy: 0, canaries: 1, stopping: 0 },
      { version: 1, instances: 3, healthy: 2, unhealthy: 1, canaries: 0, stopping: 0 },
      { version: 0, instances: 0, healthy: 0, unhealthy: 0, canaries: 0, stopping: 1 },
    ]);
  });

  test("the job page's card shows the deployment, escaped", () => {
    const html = deploymentCard(job, tasks, NOW);
    assert.match(html, /awaiting-promotion: 1 canaries healthy; waiting for &#60;promote&#62;/);
    assert.match(html, /<td>2<\/td><td>1<\/td><td>1<\/td><td>0<\/td><td>1<\/td><td>0<\/td>/);
  });
});
