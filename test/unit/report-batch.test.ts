import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ReportBatcher } from "../../src/manager/collector/report-batch.js";
import { SerialQueue } from "../../src/manager/primary/serial-queue.js";

/**
 * Reports that wait for the primary's queue are reconciled together, each
 * still answered on its own; two reports of one agent are never in one batch.
 */

type Report = { agentId: string; n: number };

function batcher(opts: { fenced?: () => boolean; fail?: (r: Report) => boolean } = {}) {
  const queue = new SerialQueue(opts.fenced ?? (() => false), () => undefined);
  const batches: string[][] = [];
  const reports = new ReportBatcher<Report, string>(
    (fn) => queue.run(fn),
    async (rs) => {
      batches.push(rs.map((r) => `${r.agentId}#${r.n}`));
      return rs.map((r): PromiseSettledResult<string> => (opts.fail?.(r) ? { status: "rejected", reason: new Error(`write of ${r.agentId} failed`) } : { status: "fulfilled", value: `ok ${r.agentId}#${r.n}` }));
    },
  );
  return { queue, reports, batches };
}

describe("report batches", () => {
  test("reports arriving while the queue is busy are reconciled in one batch, each answered on its own", async () => {
    const { queue, reports, batches } = batcher();
    let release!: () => void;
    const round = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
    const answers = ["a", "b", "c"].map((agentId) => reports.add({ agentId, n: 1 }));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(batches, [], "nothing is reconciled while the round runs");
    release();
    await round;
    assert.deepEqual(await Promise.all(answers), ["ok a#1", "ok b#1", "ok c#1"]);
    assert.deepEqual(batches, [["a#1", "b#1", "c#1"]]);
  });

  test("a failed write fails only its own report", async () => {
    const { reports } = batcher({ fail: (r) => r.agentId === "b" });
    const [a, b] = [reports.add({ agentId: "a", n: 1 }), reports.add({ agentId: "b", n: 1 })];
    assert.equal(await a, "ok a#1");
    await assert.rejects(b, /write of b failed/);
  });

  test("a second report of the same agent waits for the next batch", async () => {
    const { reports, batches } = batcher();
    const answers = [reports.add({ agentId: "a", n: 1 }), reports.add({ agentId: "b", n: 1 }), reports.add({ agentId: "a", n: 2 })];
    assert.deepEqual(await Promise.all(answers), ["ok a#1", "ok b#1", "ok a#2"]);
    assert.deepEqual(batches, [["a#1", "b#1"], ["a#2"]]);
  });

  test("a fenced primary refuses every waiting report and reconciles none", async () => {
    const { reports, batches } = batcher({ fenced: () => true });
    const answers = [reports.add({ agentId: "a", n: 1 }), reports.add({ agentId: "a", n: 2 })];
    for (const a of answers) await assert.rejects(a, { code: "not_primary" });
    assert.deepEqual(batches, []);
  });
});
