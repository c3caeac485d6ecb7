import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Job } from "../../src/common/types.js";
import { startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

const TICK_MS = 2000;

/** The job's cron record as the primary stored it: the run count and the scheduled time of the latest firing. */
type CronSeen = { runs: number; lastFiring: number; epoch: number };

describe("cron: periodic batch jobs fire on the primary, once per tick, across a failover", () => {
  let c: TestCell;
  before(async () => {
    c = await startTestCell({ managers: 2, agents: 1 });
  });
  after(async () => {
    await c?.close();
  });

  // Every fact below is one the system recorded (scheduled times, run numbers,
  // epochs), never a stopwatch: a loaded machine delays firings, it does not change them.
  test("every firing creates one run; after a failover the new primary keeps firing, never doubling a tick", async () => {
    const { primary: first } = await c.steadyPrimary();
    await c.submit(`name: ticker\ntype: batch\nschedule: '*/${TICK_MS / 1000} * * * * *'\nisolation: process\ncommand: [/bin/true]\nresources: { cpu: 0.1, memory: 16MiB }\n`);
    // Every distinct cron record the primaries show, in the order they showed it.
    const seen: CronSeen[] = [];
    let job: Job | undefined;
    const observe = async (): Promise<CronSeen | undefined> => {
      const l = await c.cell.waitForPrimary();
      job = await c.job("ticker");
      const cron = job.cron;
      if (!cron?.lastFiring) return undefined;
      const last = seen.at(-1);
      if (!last || last.runs !== cron.runs || last.lastFiring !== cron.lastFiring) seen.push({ runs: cron.runs, lastFiring: cron.lastFiring, epoch: l.epoch });
      return seen.at(-1);
    };
    await until("two runs under the first primary", async () => ((await observe())?.runs ?? 0) >= 2, { timeoutMs: 15_000, intervalMs: 100 });
    await c.cell.stopDaemon(c.cell.managerIdAt(first.url), "SIGKILL");
    // The first record the new primary shows may still hold the old primary's last firings.
    const handedOver = await until("the cron record read from a new primary", async () => {
      const s = await observe();
      return s && s.epoch > first.epoch && s;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    const after = await until("two runs fired by the new primary", async () => {
      const s = await observe();
      return s && s.runs >= handedOver.runs + 2 && s;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    assert.equal(after.epoch, handedOver.epoch, "no further failover in between");

    // Firings are identified by their scheduled time, which falls on the schedule.
    for (const s of seen) assert.equal(s.lastFiring % TICK_MS, 0, `firing at ${s.lastFiring} is on a ${TICK_MS} ms tick`);
    // Never doubled: whenever the run count rose, the latest scheduled time rose by at least one tick per new run.
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1]!, seen[i]!];
      assert.ok(b.runs >= a.runs && b.lastFiring >= a.lastFiring, `cron record went backwards: ${JSON.stringify([a, b])}`);
      assert.ok(b.runs - a.runs <= (b.lastFiring - a.lastFiring) / TICK_MS, `${b.runs - a.runs} runs for ${(b.lastFiring - a.lastFiring) / TICK_MS} ticks: a firing was doubled (${JSON.stringify([a, b])})`);
    }
    // At most one run per tick since the job was submitted (the first may fire at the tick of submission).
    assert.ok(after.runs <= Math.floor((after.lastFiring - job!.submittedAt) / TICK_MS) + 1, `${after.runs} runs by the firing of ${after.lastFiring}, submitted at ${job!.submittedAt}`);
    // Each run's tasks carry the run number its firing recorded: one task (instances: 1) per run.
    const settled = await until("the latest run's tasks created", async () => {
      const j = await c.job("ticker");
      return j.taskList.length > 0 && j.taskList.every((t) => t.run === j.cron!.runs) && j;
    });
    assert.deepEqual(settled.taskList.map((t) => t.id), ["ticker/0"]);
    assert.ok(settled.cron!.runs >= after.runs);
    await c.api.delete(`${await c.primaryUrl()}/v1/jobs/ticker`);
  });
});
