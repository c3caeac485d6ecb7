import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { HTTPError } from "got";
import type { SimCell } from "../../bench/sim/sim-cell.js";
import type { NodeInfo, TaskInstance } from "../../src/common/types.js";
import { startSimulatedMachines, startTestCell, type TestCell } from "../harness/cell.js";
import { never, until } from "../harness/wait.js";

const MACHINES = 200;

describe("simulated cell: 200 machines from one process, speaking the agent protocol to real managers", () => {
  let c: TestCell;
  let sim: SimCell;
  before(async () => {
    c = await startTestCell({ managers: 2, agents: 0 });
    sim = await startSimulatedMachines(c, MACHINES);
  });
  after(async () => {
    await sim?.stop();
    await c?.close();
  });

  test("every machine registers a valid ad: the manager lists it ready, with its attributes and its URL under /sim", async () => {
    const { nodes } = await c.api.get(`${await c.primaryUrl()}/v1/nodes`).json<{ nodes: NodeInfo[] }>();
    assert.equal(nodes.length, MACHINES);
    assert.ok(nodes.every((n) => n.state === "ready"));
    const n = nodes.find((x) => x.id === sim.idOf(9))!;
    assert.equal(n.url, sim.urlOf(n.id));
    assert.equal(n.attributes.zone, "z1");
    assert.equal(n.attributes["node.id"], n.id);
    assert.equal(n.allocatable.cpu, 8);
  });

  test("a service job of 300 instances is placed, runs exactly where the manager put it, and is killed", async () => {
    const r = await c.submit(
      "name: wide\ntype: service\ninstances: 300\ncommand: [/bin/sleep, '600']\nresources: { cpu: 0.5, memory: 256MiB }\nports: [{ name: http }]\nplacement: { strategy: spread, maxPerNode: 2 }\nconstraints: [{ attribute: os, operator: '=', value: linux }]\n",
    );
    const j = await c.waitJob(r.id, (x) => x.taskList.length === 300 && x.taskList.every((t) => t.state === "running"), 90_000, "all 300 running");
    const onSim = sim.runningTasks();
    for (const t of j.taskList) {
      assert.deepEqual(onSim.get(t.id), { nodeId: t.nodeId, attempt: 1 }, `${t.id} runs on the node the manager recorded`);
      assert.ok(t.ports?.http, `${t.id} has its allocated port recorded`);
    }
    const used = new Set(j.taskList.map((t) => t.nodeId));
    assert.ok(used.size >= 150, `at most 2 per machine: ${used.size} machines used`);
    assert.ok([...used].every((id) => !sim.agents.get(id!)!.ad.attributes.os!.includes("windows")), "the os constraint held");

    await c.api.delete(`${await c.primaryUrl()}/v1/jobs/wide`);
    const killed = await c.waitJob(r.id, (x) => x.taskList.every((t) => t.state === "killed"), 60_000, "all killed");
    assert.ok(killed.taskList.every((t) => t.exit?.signal === "SIGTERM"));
    assert.equal([...sim.runningTasks().keys()].filter((id) => id.startsWith("wide/")).length, 0, "nothing of the job still runs");
  });

  test("batch instances exit after their run time and the job completes; the exit code comes from the task's env", async () => {
    const r = await c.submit("name: short\ntype: batch\ninstances: 100\ncommand: [/bin/true]\nenv: { SIM_RUN_MS: '200' }\nresources: { cpu: 0.25, memory: 64MiB }\n");
    const j = await c.waitJob(r.id, (x) => x.status === "complete", 60_000, "complete");
    assert.equal(j.taskList.length, 100);
    assert.ok(j.taskList.every((t) => t.state === "completed" && t.attempt === 1 && t.exit?.exitCode === 0));

    const f = await c.submit("name: failing\ntype: batch\ncommand: [/bin/false]\nenv: { SIM_EXIT_CODE: '3', SIM_RUN_MS: '50' }\nrestart: { attempts: 0, delay: 100ms }\n");
    const fj = await c.waitJob(f.id, (x) => x.taskList[0]?.events.some((e) => e.type === "exited") === true, 30_000, "an exit");
    const exited = fj.taskList[0]!.events.find((e) => e.type === "exited")!;
    assert.match(exited.message, /exit 3/);
    await c.api.delete(`${await c.primaryUrl()}/v1/jobs/failing`);
  });

  test("dispatch is idempotent by (task, attempt), fenced by epoch and authorised; a task the manager never asked for is stopped", async () => {
    const { epoch } = await c.api.get(`${await c.primaryUrl()}/v1/leader`).json<{ epoch: number }>();
    const node = sim.idOf(7);
    const url = `${sim.urlOf(node)}/v1/tasks/${encodeURIComponent("stray/0")}`;
    const dispatch = (e: number, attempt = 1) => ({
      json: { epoch: e, taskId: "stray/0", jobId: "stray", index: 0, attempt, spec: { type: "service", command: ["x"], env: {}, resources: { cpu: 0.1, memory: 0, disk: 0 }, ports: [] } },
    });
    const status = async (p: Promise<unknown>) => {
      try {
        await p;
        return 200;
      } catch (e) {
        if (e instanceof HTTPError) return e.response.statusCode;
        throw e;
      }
    };
    assert.equal(await status(c.api.put(url, { ...dispatch(epoch - 1), headers: { authorization: "Bearer nope-nope-nope-nope" } })), 401);
    assert.equal(await status(c.api.put(url, dispatch(epoch - 1))), 409, "an older epoch is refused");
    assert.equal((await c.api.put(url, dispatch(epoch))).statusCode, 201);
    assert.equal((await c.api.put(url, dispatch(epoch))).statusCode, 200, "the same attempt again is a no-op");
    assert.equal(sim.stats().duplicateDispatches, 1);
    assert.equal(await status(c.api.post(`${url}/stop`, { json: { epoch: epoch - 1 } })), 409);
    // Level-triggered reconciliation: the next report shows a task nobody asked for, and the primary stops it.
    await until("the stray task stopped by the primary", () => sim.agents.get(node)!.task("stray/0")?.state === "exited", { timeoutMs: 20_000, intervalMs: 100 });
  });

  test("after SIGKILL of the primary the machines report to the new one, which keeps every running task (attempt 1)", async () => {
    const r = await c.submit("name: steady\ntype: service\ninstances: 50\ncommand: [/bin/sleep, '600']\nresources: { cpu: 0.5, memory: 128MiB }\n");
    await c.waitJob(r.id, (x) => x.taskList.length === 50 && x.taskList.every((t) => t.state === "running"), 60_000, "all running");
    const { primary: old } = await c.steadyPrimary();
    const dispatchesBefore = sim.stats().dispatches;
    await c.cell.stopDaemon(old.id, "SIGKILL");
    try {
      const fresh = await until("a new primary", async () => {
        const l = await c.cell.waitForPrimary(30_000);
        return l.id !== old.id && l;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      await until("the machines following the new primary", () => sim.currentLeader?.epoch === fresh.epoch, { timeoutMs: 30_000, intervalMs: 100 });
      // Through the new primary's grace for reports, and past it: a task it had not heard of would be rescheduled.
      // A task may read dispatched (attempt 1) until its machine reports again: the old primary had not yet written that it runs (observations are deferred).
      await never("a task restarted or dispatched again by the new primary", async () => {
        const moved = (await c.job(r.id)).taskList.filter((t) => (t.state !== "running" && t.state !== "dispatched") || t.attempt !== 1);
        return (moved.length > 0 || sim.stats().dispatches !== dispatchesBefore) && { moved, dispatches: sim.stats().dispatches - dispatchesBefore };
      }, 5000, { intervalMs: 250 });
      await c.waitJob(r.id, (x) => x.taskList.every((t) => t.state === "running"), 30_000, "all running again, as the machines report them");
      const j = await c.job(r.id);
      const tasks: TaskInstance[] = j.taskList;
      assert.ok(tasks.every((t) => t.state === "running" && t.attempt === 1), JSON.stringify(tasks.filter((t) => t.state !== "running" || t.attempt !== 1)));
      assert.equal(sim.stats().dispatches, dispatchesBefore, "nothing was dispatched again");
      await c.api.delete(`${fresh.url}/v1/jobs/steady`);
    } finally {
      c.cell.startDaemon(old.id);
    }
  });
});
