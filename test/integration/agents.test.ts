import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestCell, batchJob, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

type AgentTask = { taskId: string; attempt: number; state: string; exit?: { exitCode: number } };

describe("agents: restarts, lost nodes, drain, preemption and plan", () => {
  let c: TestCell;
  before(async () => {
    // Small nodes so that placement decisions are visible.
    c = await startTestCell({ managers: 2, agents: 2, stopTasksOnExit: false });
  });
  after(async () => {
    await c?.close();
  });

  const agentTasks = (id: string) => c.api.get(`${c.cell.daemons.get(id)!.url}/v1/tasks`).json<{ tasks: AgentTask[] }>();

  test("SIGKILL of an agent and a restart kill no task; exits during the outage are recorded", async () => {
    const r = await c.submit(batchJob("survivor", ["/bin/sh", "-c", "sleep 3; echo done"], "constraints: [{ attribute: node.id, operator: '=', value: agent-1 }]\n"));
    await c.waitJob(r.id, (j) => j.taskList[0]?.state === "running", 20_000, "running");
    await c.cell.stopDaemon("agent-1", "SIGKILL");
    c.cell.startDaemon("agent-1");
    const j = await c.waitJob(r.id, (x) => x.status === "complete" || x.status === "failed", 30_000, "finished");
    assert.equal(j.status, "complete");
    assert.equal(j.taskList[0]!.attempt, 1, "the task was not restarted");
    assert.equal(j.taskList[0]!.exit?.exitCode, 0);
    const logs = await c.api.get(`${await c.primaryUrl()}/v1/tasks/${encodeURIComponent("survivor/0")}/logs`).text();
    assert.match(logs, /done/);
  });

  test("plan explains an unplaceable job with counts per reason and the smallest change that would fit; submit leaves it pending with the reason", async () => {
    const url = await c.primaryUrl();
    type Unplaced = { summary: string; largestFit: { cpu: number }; smallestChange: { text: string; nodes: number; resources?: { cpu?: number } }[] };
    const huge = "name: huge\ntype: batch\nisolation: process\ncommand: [/bin/true]\nresources: { cpu: 1000, memory: 64MiB }\n";
    const plan = await c.api.post(`${url}/v1/jobs/plan`, { body: huge }).json<{ placeable: boolean; unplaced: Unplaced[] }>();
    assert.equal(plan.placeable, false);
    assert.match(plan.unplaced[0]!.summary, /2 nodes: cpu exhausted/);
    assert.ok(plan.unplaced[0]!.largestFit.cpu > 0);
    const cut = plan.unplaced[0]!.smallestChange[0]!;
    assert.match(cut.text, /^fits (agent-\d|2 nodes) with cpu ≤ [\d.]+$/);
    assert.ok(cut.resources!.cpu! > 0 && cut.resources!.cpu! <= plan.unplaced[0]!.largestFit.cpu, "no more cpu than the largest fit");
    const picky = "name: picky\ntype: batch\nisolation: process\ncommand: [/bin/true]\nconstraints: [{ attribute: os, operator: '=', value: plan9 }]\n";
    const plan2 = await c.api.post(`${url}/v1/jobs/plan`, { body: picky }).json<{ unplaced: Unplaced[] }>();
    assert.match(plan2.unplaced[0]!.summary, /2 nodes: constraint os = plan9 failed/);
    assert.equal(plan2.unplaced[0]!.smallestChange[0]!.text, "fits 2 nodes without constraint os = plan9");
    const r = await c.submit(huge);
    const j = await c.waitJob(r.id, (x) => Boolean(x.taskList[0]?.reason), 10_000, "a pending reason");
    assert.equal(j.taskList[0]!.state, "pending");
    assert.match(j.taskList[0]!.reason!, /cpu exhausted/);
    const page = await c.api.get(`${url}/jobs/huge`, { headers: { cookie: `torca_session=${encodeURIComponent(c.cell.token)}` } }).text();
    assert.match(page, /Smallest change that would fit now:<\/p><ul id="smallest-change"><li>fits (agent-\d|2 nodes) with cpu ≤ [\d.]+<\/li>/);
    await c.api.delete(`${url}/v1/jobs/huge`);
  });

  test("a killed agent's tasks run elsewhere", async () => {
    const r = await c.submit("name: keepalive\ntype: service\nisolation: process\ninstances: 2\ncommand: [/bin/sleep, '600']\nresources: { cpu: 0.1, memory: 16MiB }\n");
    const j = await c.waitJob(r.id, (x) => x.taskList.length === 2 && x.taskList.every((t) => t.state === "running"), 20_000, "running");
    const victim = j.taskList[0]!.nodeId!;
    const onVictim = j.taskList.filter((t) => t.nodeId === victim).map((t) => t.id);
    await c.cell.stopDaemon(victim, "SIGKILL");
    try {
      const moved = await c.waitJob(r.id, (x) => x.taskList.every((t) => t.state === "running" && t.nodeId !== victim), 20_000, "all running elsewhere");
      for (const id of onVictim) assert.ok(moved.taskList.find((t) => t.id === id)!.events.some((e) => e.type === "lost"), `the move of ${id} is recorded as lost`);
    } finally {
      c.cell.startDaemon(victim);
    }
    await c.cell.waitForNodes(2, 30_000);
    // The restarted agent still had the old instance running: reconciliation stops it.
    let stale: AgentTask[] = [];
    await until(
      `no stale instance left running on ${victim}`,
      async () => {
        stale = (await agentTasks(victim)).tasks.filter((t) => t.taskId.startsWith("keepalive/") && t.state !== "exited");
        const cur = await c.job(r.id);
        const owned = stale.filter((t) => cur.taskList.some((x) => x.id === t.taskId && x.nodeId === victim && x.attempt === t.attempt));
        return stale.length === owned.length;
      },
      { timeoutMs: 20_000, intervalMs: 200, show: () => stale },
    );
  });

  test("drain moves a node's tasks away and places nothing new there; --undo makes it eligible", async () => {
    const url = await c.primaryUrl();
    const j = await c.job("keepalive");
    const node = j.taskList[0]!.nodeId!;
    await c.api.post(`${url}/v1/nodes/${node}/drain`, { json: {} });
    const moved = await c.waitJob("keepalive", (x) => x.taskList.every((t) => t.state === "running" && t.nodeId !== node), 20_000, "moved off the drained node");
    assert.equal(moved.taskList.length, 2);
    const nodes = await c.api.get(`${url}/v1/nodes`).json<{ nodes: { id: string; state: string }[] }>();
    assert.equal(nodes.nodes.find((n) => n.id === node)!.state, "draining");
    await c.api.post(`${url}/v1/nodes/${node}/drain`, { json: { undo: true } });
    const back = await c.api.get(`${url}/v1/nodes`).json<{ nodes: { id: string; state: string }[] }>();
    assert.equal(back.nodes.find((n) => n.id === node)!.state, "ready");
    await c.api.delete(`${url}/v1/jobs/keepalive`);
    await c.waitJob("keepalive", (x) => x.status === "dead", 20_000, "dead");
  });

  test("a prod task preempts lower-priority work when nothing else fits", async () => {
    const url = await c.primaryUrl();
    const nodes = await c.api.get(`${url}/v1/nodes`).json<{ nodes: { id: string; allocatable: { cpu: number } }[] }>();
    const cpu = Math.min(...nodes.nodes.map((n) => n.allocatable.cpu));
    // Fill both nodes with batch work, then ask for a prod task that needs a whole node.
    const fill = `name: filler\ntype: service\npriority: batch\nisolation: process\ninstances: 2\ncommand: [/bin/sleep, '600']\nresources: { cpu: ${cpu * 0.9}, memory: 16MiB }\nplacement: { maxPerNode: 1 }\n`;
    await c.submit(fill);
    await c.waitJob("filler", (x) => x.taskList.length === 2 && x.taskList.every((t) => t.state === "running"), 20_000, "filler running");
    await c.submit(`name: vip\ntype: service\npriority: prod\nisolation: process\ncommand: [/bin/sleep, '600']\nresources: { cpu: ${cpu * 0.5}, memory: 16MiB }\n`);
    await c.waitJob("vip", (x) => x.taskList[0]?.state === "running", 20_000, "vip running");
    const filler = await c.job("filler");
    const preempted = filler.taskList.filter((t) => t.events.some((e) => e.type === "preempted"));
    assert.equal(preempted.length, 1, "exactly one filler instance was preempted");
    assert.equal(preempted[0]!.state === "running", false, "the preempted instance waits for room");
    await c.api.delete(`${url}/v1/jobs/vip`);
    await c.api.delete(`${url}/v1/jobs/filler`);
  });
});
