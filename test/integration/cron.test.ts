import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestCell, type TestCell } from "../harness/cell.js";

describe("cron: periodic batch jobs fire on the primary, once per tick, across a failover", () => {
  let c: TestCell;
  before(async () => {
    c = await startTestCell({ managers: 2, agents: 1 });
  });
  after(async () => {
    await c?.close();
  });

  test("every firing creates one run; after a failover the new primary keeps firing, never doubling a tick", async () => {
    const t0 = Date.now();
    await c.submit("name: ticker\ntype: batch\nschedule: '*/2 * * * * *'\nisolation: process\ncommand: [/bin/true]\nresources: { cpu: 0.1, memory: 16MiB }\n");
    const before = await c.waitJob("ticker", (j) => (j.cron?.runs ?? 0) >= 2, 15_000, "two runs");
    const runsBefore = before.cron!.runs;
    const p = await c.cell.waitForPrimary();
    const id = c.cell.managerIdAt(p.url);
    await c.cell.stopDaemon(id, "SIGKILL");
    c.cell.startDaemon(id);
    // The new primary keeps firing: two more runs after the takeover.
    const j = await c.waitJob("ticker", (x) => (x.cron?.runs ?? 0) >= runsBefore + 2, 20_000, "more runs after the failover");
    const elapsed = Date.now() - t0;
    const runs = j.cron!.runs;
    // Never doubled: at most one run per 2 s tick since submission.
    assert.ok(runs <= Math.floor(elapsed / 2000) + 1, `${runs} runs in ${elapsed} ms: a firing was doubled`);
    // Firings are identified by their scheduled time, and the latest one is recent.
    assert.equal(j.cron!.lastFiring! % 2000, 0);
    assert.ok(Date.now() - j.cron!.lastFiring! < 6000, "the new primary fires on schedule");
    process.stderr.write(`# cron: ${runs} runs in ${elapsed} ms with a primary SIGKILL in between\n`);
    await c.api.delete(`${await c.primaryUrl()}/v1/jobs/ticker`);
  });
});
