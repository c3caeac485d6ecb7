/**
 * A ZooKeeper outage restarts nothing: the single ZooKeeper server of a local
 * cell is frozen (SIGSTOP of its java process, by PID) for three session
 * timeouts and resumed, four times in a row. Whether the freeze expires the
 * sessions is a race at resume; either way the running service's tasks keep
 * their PIDs, attempts and ports, and the cell runs a new job within 30 s of
 * each resume.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";
import { closeCellAndTasks, startedInstances } from "../chaos/probes.js";
import { pidAlive } from "../../src/common/process.js";

const SESSION_MS = 2000;
const FREEZES = 4;

describe("a frozen ZooKeeper server, four times", { timeout: 600_000 }, () => {
  let c: TestCell;
  let zookeeperPid = -1;
  before(async () => {
    // The grace outlasts a freeze and the re-registration after it: nothing may move.
    c = await startTestCell({ managers: 2, agents: 2, sessionTimeout: `${SESSION_MS}ms`, stopTasksOnExit: false, managerExtra: { disconnect: { grace: "20s" } } });
    zookeeperPid = c.cell.zookeeper?.pid ?? -1;
    assert.ok(zookeeperPid > 0, "the harness started ZooKeeper and knows its PID");
  });
  after(async () => {
    if (zookeeperPid > 0 && pidAlive(zookeeperPid)) process.kill(zookeeperPid, "SIGCONT");
    await closeCellAndTasks(c);
  });

  /** Per task of the service: "task#attempt port pid", sorted. */
  const picture = async () => {
    const j = await c.job("steady");
    const pids = new Map(c.cell.layout.agents.flatMap((a) => startedInstances(c.cell.dir, a.id)).filter((s) => s.state === "running").map((s) => [`${s.taskId}#${s.attempt}`, s.pid]));
    return j.taskList.map((t) => `${t.id}#${t.attempt} ${t.state} ${JSON.stringify(t.ports ?? {})} pid ${pids.get(`${t.id}#${t.attempt}`) ?? "-"}`).sort();
  };

  test("the service's tasks keep their PIDs and attempts, and the cell runs new work after each resume", async (t) => {
    await c.submit("name: steady\ntype: service\nisolation: process\ninstances: 2\ncommand: [/bin/sleep, '3600']\nresources: { cpu: 0.1, memory: 16MiB }\nports: [{ name: http }]\n");
    await c.waitJob("steady", (j) => j.taskList.length === 2 && j.taskList.every((x) => x.state === "running"), 30_000, "both instances running");
    const before = await picture();
    t.diagnostic(`before: ${before.join("; ")}`);
    for (let round = 1; round <= FREEZES; round++) {
      process.kill(zookeeperPid, "SIGSTOP");
      await sleep(3 * SESSION_MS);
      process.kill(zookeeperPid, "SIGCONT");
      const resumedAt = Date.now();
      // Right after the resume the primary may be changing hands (503 or no answer): submissions are retried until accepted.
      let refused = "";
      const r = await until(
        `a submission accepted after freeze ${round}`,
        () =>
          c.submit(batchJob(`after-freeze-${round}`, ["/bin/true"])).catch((e: unknown) => {
            refused = e instanceof Error ? e.message : String(e);
            return false as const;
          }),
        { timeoutMs: 30_000, intervalMs: 250, show: () => refused },
      );
      if (refused) t.diagnostic(`round ${round}: submissions refused before one was accepted (last: ${refused})`);
      await c.waitJob(r.id, (j) => j.status === "complete", 30_000 - (Date.now() - resumedAt), "complete within 30 s of the resume");
      const ranIn = Date.now() - resumedAt;
      const now = await picture();
      t.diagnostic(`round ${round}: new job complete ${(ranIn / 1000).toFixed(1)} s after the resume; service: ${now.join("; ")}`);
      assert.deepEqual(now, before, `after freeze ${round}, the same attempts, ports and PIDs run`);
      for (const line of now) assert.ok(pidAlive(Number(line.split(" pid ")[1])), `${line}: the process is alive`);
    }
  });
});
