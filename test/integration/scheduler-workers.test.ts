import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { SimCell } from "../../bench/sim/sim-cell.js";
import type { TaskInstance } from "../../src/common/types.js";
import { startSimulatedMachines, startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

const MACHINES = 20;

describe("a primary placing with two scheduler workers (manager.schedulerWorkers: 2)", () => {
  let c: TestCell;
  let sim: SimCell;
  before(async () => {
    c = await startTestCell({ managers: 2, agents: 0, managerExtra: { schedulerWorkers: 2 } });
    sim = await startSimulatedMachines(c, MACHINES);
  });
  after(async () => {
    await sim?.stop();
    await c?.close();
  });

  test("three jobs asking for more than the cell has: what fits runs, no machine holds more cpu than it has, the rest waits with a reason", async () => {
    // 20 machines × 8 cores = 160 cores; 3 × 40 × 1.5 = 180 cores asked: 5 per machine fit (7.5 cores), 100 of 120.
    const ids: string[] = [];
    for (const name of ["w1", "w2", "w3"]) ids.push((await c.submit(`name: ${name}\ntype: service\ninstances: 40\ncommand: [/bin/sleep, '600']\nresources: { cpu: 1.5, memory: 256MiB }\n`)).id);
    const all = async (): Promise<TaskInstance[]> => (await Promise.all(ids.map((id) => c.job(id)))).flatMap((j) => j.taskList);
    const settled = (tasks: TaskInstance[]) => tasks.length === 120 && tasks.filter((t) => t.state === "running").length === 100 && tasks.filter((t) => t.state === "pending" && t.reason?.startsWith("no node fits")).length === 20;
    let seen: TaskInstance[] = [];
    const tasks = await until(
      "100 running and 20 waiting with a reason",
      async () => {
        seen = await all();
        return settled(seen) && seen;
      },
      { timeoutMs: 90_000, intervalMs: 500, show: () => seen.map((t) => [t.id, t.state, t.nodeId, t.reason]) },
    );
    const cpu = new Map<string, number>();
    for (const t of tasks) if (t.state === "running" || t.state === "dispatched") cpu.set(t.nodeId!, (cpu.get(t.nodeId!) ?? 0) + 1.5);
    for (const [node, used] of cpu) assert.ok(used <= 8, `${node} holds ${used} cores of 8`);
    const onSim = sim.runningTasks();
    for (const t of tasks.filter((x) => x.state === "running")) assert.equal(onSim.get(t.id)?.nodeId, t.nodeId, `${t.id} runs where the manager put it`);
  });
});
