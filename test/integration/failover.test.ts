import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { instanceName } from "../../agent/driver/names.js";
import { startTestCell, batchJob, type TestCell } from "../harness/cell.js";
import { never, until } from "../harness/wait.js";

describe("primary/backup: election, takeover and fencing", () => {
  let c: TestCell;
  before(async () => {
    c = await startTestCell({ managers: 2, agents: 1 });
  });
  after(async () => {
    await c?.close();
  });

  // Each case starts from its own known point (steadyPrimary): whichever manager
  // the previous case left as primary, every manager runs and follows one primary.
  // How fast a takeover is belongs to bench/cell-failover.ts, not to this file.

  test("kill -9 of the primary: the backup becomes primary, with a higher epoch", async () => {
    const { primary: first, backups } = await c.steadyPrimary();
    const victim = c.cell.managerIdAt(first.url);
    await c.cell.stopDaemon(victim, "SIGKILL");
    const next = await until("a primary other than the killed one", async () => {
      const l = await c.cell.waitForPrimary();
      return l.url !== first.url && l;
    });
    assert.deepEqual([c.cell.managerIdAt(next.url)], backups, "the backup took over");
    assert.ok(next.epoch > first.epoch, `epoch ${next.epoch} > ${first.epoch}`);
  });

  test("kill -9 of the primary during a stream of submissions loses no acknowledged job and starts no duplicate", async () => {
    const { primary: p } = await c.steadyPrimary();
    const acked: string[] = [];
    let stop = false;
    const submitter = (async () => {
      for (let i = 0; i < 400 && !stop; i++) {
        try {
          const r = await c.submit(batchJob(`stream-${i}`, ["/bin/true"]));
          acked.push(r.id);
        } catch {
          // Refused or in flight while there is no primary: not acknowledged. Wait for the next one.
          await c.cell.waitForPrimary();
        }
      }
    })();
    try {
      await until("ten submissions acknowledged by the first primary", () => acked.length >= 10, { timeoutMs: 30_000 });
      const victim = c.cell.managerIdAt(p.url);
      await c.cell.stopDaemon(victim, "SIGKILL");
      const ackedAtKill = acked.length;
      c.cell.startDaemon(victim);
      await until("ten submissions acknowledged after the kill", () => acked.length >= ackedAtKill + 10, { timeoutMs: 30_000 });
      const next = await c.cell.waitForPrimary();
      assert.ok(next.epoch > p.epoch, `the acknowledgements after the kill come from a new epoch (${next.epoch} > ${p.epoch})`);
    } finally {
      stop = true;
      await submitter;
    }
    // A dispatch recorded by the dying primary but never sent is redispatched as a new
    // attempt (by design); what must never happen is an instance *running* twice. The
    // agent keeps one directory per (task, attempt) it started: count those.
    const tasksDir = join(c.cell.dir, "agent-1", "tasks");
    let redispatched = 0;
    for (const id of acked) {
      const j = await c.waitJob(id, (x) => x.status === "complete", 60_000, "complete");
      assert.equal(j.taskList.length, 1);
      const t = j.taskList[0]!;
      const started = Array.from({ length: t.attempt }, (_, a) => a + 1).filter((a) => existsSync(join(tasksDir, instanceName(t.id, a))));
      assert.equal(started.length, 1, `${t.id} was started ${started.length} times (attempts ${started.join(", ")})`);
      if (t.attempt > 1) redispatched++;
    }
    process.stderr.write(`# acknowledged submissions across the failover: ${acked.length}, each ran once (${redispatched} redispatched after an unsent dispatch)\n`);
  });

  test("a primary stopped (SIGSTOP) past its session and resumed writes and dispatches nothing", async () => {
    const { primary: p } = await c.steadyPrimary();
    const id = c.cell.managerIdAt(p.url);
    const proc = c.cell.daemons.get(id)!.process!;
    proc.kill("SIGSTOP");
    try {
      const next = await until("a primary other than the stopped one", async () => {
        const l = await c.cell.waitForPrimary();
        return l.url !== p.url && l;
      });
      assert.ok(next.epoch > p.epoch, `epoch ${next.epoch} > ${p.epoch}`);
      // Work submitted to the new primary while the old one sleeps.
      const r = await c.submit(batchJob("after-stop", ["/bin/sh", "-c", "sleep 1"]));
      await c.waitJob(r.id, (j) => j.status === "complete", 30_000, "complete");
      proc.kill("SIGCONT");
      await until("the resumed manager answering as a backup of the new primary", async () => {
        const old = await c.cell.leaderAt(p.url);
        return old && !old.isPrimary && old.url === next.url;
      });
      const agentUrl = c.cell.daemons.get("agent-1")!.url;
      // The resumed manager has had every chance to act on its stale belief: over a few report
      // intervals it never claims the primary again, never redispatches, and the agent keeps the new epoch.
      await never(
        "the resumed manager acting as primary",
        async () => {
          const old = await c.cell.leaderAt(p.url);
          const attempt = (await c.job(r.id)).taskList[0]!.attempt;
          const agent = await c.api.get(`${agentUrl}/v1/status`).json<{ epoch: number }>();
          return (old?.isPrimary || attempt !== 1 || agent.epoch !== next.epoch) && { oldIsPrimary: old?.isPrimary, attempt, agentEpoch: agent.epoch, newEpoch: next.epoch };
        },
        3000,
        { intervalMs: 250 },
      );
    } finally {
      proc.kill("SIGCONT");
    }
  });
});
