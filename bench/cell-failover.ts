import { EventWatcher, nowMs, quantile, round, startBenchCell, type BenchCell } from "./cell-common.js";
import { until } from "../test/harness/wait.js";

/**
 * P4: SIGKILL of the primary → the backup accepts a write (201 on a submit),
 * median of 5 takeovers, with a 2 s ZooKeeper session. The killed manager is
 * restarted as the next backup before each round.
 *
 * P5: SIGKILL of an agent → every task it ran is recorded running on another
 * agent (median of 3), same session.
 */

const SESSION = "2s";

/** POSTs a job to `url` until it answers 201; returns when it did. Bounded by `timeoutMs`. */
function firstAcceptedWrite(c: BenchCell, url: string, name: string, timeoutMs: number): Promise<number> {
  const body = `name: ${name}\ntype: batch\nisolation: process\ncommand: ["/bin/true"]\nresources: { cpu: 10m, memory: 8MiB }\n`;
  // 307 (still a backup, naming the dead primary), 503 (no primary yet) or no answer: not accepted yet.
  return until(
    `a write accepted by ${url}`,
    async () => (await c.api.post(`${url}/v1/jobs`, { body, headers: { "content-type": "application/yaml" }, timeout: { request: 2000 } })).statusCode === 201 && nowMs(),
    { timeoutMs, intervalMs: 10 },
  );
}

export async function benchTakeover(rounds = 5): Promise<Record<string, number | string>> {
  const c = await startBenchCell({ managers: 2, agents: 1, sessionTimeout: SESSION, agentDriver: "process" });
  const ms: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // Every round starts with the killed manager of the last one back as a backup.
      const { primary: p, backups } = await c.steadyPrimary(30_000);
      const survivor = c.cell.daemons.get(backups[0]!)!.url;
      const t0 = nowMs();
      await c.cell.stopDaemon(c.cell.managerIdAt(p.url), "SIGKILL");
      const t1 = await firstAcceptedWrite(c, survivor, `p4-${i}`, 30_000);
      ms.push(t1 - t0);
    }
  } finally {
    await c.close();
  }
  return {
    "P4 takeover: primary SIGKILL → backup accepts a write, median (ms)": round(quantile(ms, 0.5), 0),
    "P4 takeover min / max (ms)": `${round(Math.min(...ms), 0)} / ${round(Math.max(...ms), 0)}`,
    "P4 rounds": ms.length,
    "P4 session timeout": SESSION,
  };
}

export async function benchAgentLoss(rounds = 3): Promise<Record<string, number | string>> {
  const c = await startBenchCell({ managers: 2, agents: 2, sessionTimeout: SESSION, agentDriver: "process" });
  const ms: number[] = [];
  let moved = 0;
  try {
    for (let i = 0; i < rounds; i++) {
      const url = await c.primaryUrl();
      const id = `p5-${i}`;
      const events = new EventWatcher(c.api, url, true);
      await events.open();
      try {
        const instances = 4;
        const placed = new Map<string, { node: string; running: boolean }>();
        const allRunning = events.until(
          (t) => {
            if (t.jobId !== id) return false;
            placed.set(t.id, { node: t.nodeId ?? "", running: t.state === "running" });
            return placed.size === instances && [...placed.values()].every((x) => x.running);
          },
          30_000,
          `${id} running`,
        );
        await c.submit(`name: ${id}\ntype: service\nisolation: process\ninstances: ${instances}\ncommand: ["/bin/sleep", "600"]\nresources: { cpu: 10m, memory: 8MiB }\n`);
        await allRunning;
        const victim = [...placed.values()][0]!.node;
        const onVictim = new Set([...placed].filter(([, v]) => v.node === victim).map(([k]) => k));
        const elsewhere = new Set<string>();
        const rescued = events.until(
          (t) => {
            if (onVictim.has(t.id) && t.state === "running" && t.nodeId && t.nodeId !== victim) elsewhere.add(t.id);
            return elsewhere.size === onVictim.size;
          },
          30_000,
          `${id}: tasks of ${victim} running elsewhere`,
        );
        const t0 = nowMs();
        await c.cell.stopDaemon(victim, "SIGKILL");
        ms.push((await rescued) - t0);
        moved += onVictim.size;
        c.cell.startDaemon(victim);
        await c.api.delete(`${url}/v1/jobs/${id}`);
        await c.cell.waitForNodes(2, 30_000);
      } finally {
        events.close();
      }
    }
  } finally {
    await c.close();
  }
  return {
    "P5 agent SIGKILL → its tasks running elsewhere, median (ms)": round(quantile(ms, 0.5), 0),
    "P5 min / max (ms)": `${round(Math.min(...ms), 0)} / ${round(Math.max(...ms), 0)}`,
    "P5 rounds / tasks moved": `${ms.length} / ${moved}`,
    "P5 session timeout": SESSION,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchTakeover());
  console.log(await benchAgentLoss());
}
