/**
 * Disconnected nodes on a real cell: a node whose agent died is disconnected,
 * its tasks stay put within the grace, and `confirm-lost` (admin) migrates
 * them at once; a connected node cannot be confirmed lost. The backup shows
 * what the primary decided (disconnected, then lost), and both show the node
 * ready again once its agent registers again.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";
import { closeCellAndTasks } from "../chaos/probes.js";

type NodeRow = { id: string; state: string };

describe("disconnected nodes and confirm-lost", () => {
  let c: TestCell;
  before(async () => {
    c = await startTestCell({ managers: 2, agents: 2, stopTasksOnExit: false, managerExtra: { disconnect: { grace: "10m" } } });
  });
  after(async () => {
    await closeCellAndTasks(c);
  });

  const nodesAt = async (url: string) => (await c.api.get(`${url}/v1/nodes`).json<{ nodes: NodeRow[] }>()).nodes;
  const nodes = async () => nodesAt(await c.primaryUrl());
  const backupUrl = async () => {
    const primary = await c.primaryUrl();
    return c.cell.managerUrls.find((u) => u !== primary)!;
  };
  const stateOf = async (url: string, id: string) => (await nodesAt(url)).find((n) => n.id === id)?.state;
  const confirm = async (id: string) => c.api.post(`${await c.primaryUrl()}/v1/nodes/${id}/confirm-lost`, { json: {}, throwHttpErrors: false });

  test("a dead agent's node is disconnected and keeps its task until an admin confirms it lost", async () => {
    const pinned = "constraints: [{ attribute: node.id, operator: '=', value: agent-2 }]\n";
    await c.submit(batchJob("pinned", ["/bin/sleep", "600"], pinned));
    await c.waitJob("pinned", (j) => j.taskList[0]?.state === "running", 20_000, "running on agent-2");
    await c.cell.stopDaemon("agent-2", "SIGKILL");
    await until("agent-2 disconnected", async () => (await nodes()).find((n) => n.id === "agent-2")?.state === "disconnected", { timeoutMs: 20_000, intervalMs: 200 });
    const within = await c.job("pinned");
    assert.deepEqual([within.taskList[0]!.state, within.taskList[0]!.nodeId, within.taskList[0]!.attempt], ["running", "agent-2", 1], "nothing moves within the grace");

    const refused = await confirm("agent-1");
    assert.equal(refused.statusCode, 409, `a connected node cannot be confirmed lost: ${refused.body}`);

    const confirmed = await confirm("agent-2");
    assert.equal(confirmed.statusCode, 200, confirmed.body);
    assert.deepEqual(JSON.parse(confirmed.body), { id: "agent-2", lost: true, tasks: 1 });
    const moved = await c.waitJob("pinned", (j) => j.taskList[0]?.state === "pending", 10_000, "back to pending (it fits nowhere else)");
    assert.ok(moved.taskList[0]!.events.some((e) => e.type === "lost"), "the move is recorded as lost");
    assert.equal((await nodes()).find((n) => n.id === "agent-2")?.state, "lost");
    await until("the backup shows agent-2 lost", async () => (await stateOf(await backupUrl(), "agent-2")) === "lost", { timeoutMs: 10_000, intervalMs: 200 });
  });

  test("a lost node whose agent registers again is ready on the primary and the backup", async () => {
    c.cell.startDaemon("agent-2");
    await until("agent-2 ready on both managers", async () => (await stateOf(await c.primaryUrl(), "agent-2")) === "ready" && (await stateOf(await backupUrl(), "agent-2")) === "ready", { timeoutMs: 30_000, intervalMs: 200 });
    await c.cell.stopDaemon("agent-2", "SIGKILL");
    // The earlier declaration covers the earlier registration only: gone again, the node is disconnected, not lost.
    await until("agent-2 disconnected again on both managers", async () => (await stateOf(await c.primaryUrl(), "agent-2")) === "disconnected" && (await stateOf(await backupUrl(), "agent-2")) === "disconnected", { timeoutMs: 20_000, intervalMs: 200 });
  });
});
