import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { batchJob, ownAddresses, startTestCell, type TestCell } from "../harness/cell.js";
import { runTorca } from "../harness/cli.js";
import { TestEnsemble } from "../harness/ensemble.js";
import { leftoverTables, nftablesAvailable, Partitions } from "../harness/partitions.js";
import { until } from "../harness/wait.js";
import { closeCellAndTasks, seconds, startedInstances, submitOnce, type StartedInstance } from "../chaos/probes.js";
import { pidAlive } from "../../src/common/process.js";

/**
 * The partition suite (issue 20): a 3-server ZooKeeper ensemble, two managers
 * and two agents, each on its own loopback address, and one network
 * partition per case (nftables, test/harness/partitions.ts), healed at the
 * end of the case whatever happens. After each case the cell is checked:
 * no acknowledged job lost, no task instance running twice, no task
 * restarted that did not need to be (no case here needs one), and the cell
 * back to normal (a primary, both nodes ready, a new job runs).
 */

export type PartitionCase = "primary-zookeeper" | "primary-agents" | "agent-zookeeper" | "agent-managers" | "client-primary" | "zookeeper-server" | "zookeeper-down";

export interface PartitionScale {
  /** The cases to run, in this order. */
  cases: PartitionCase[];
  /** Cases written to the rule of issue 20 item 1 that fail until the primary has the disconnected grace. */
  todo?: Partial<Record<PartitionCase, string>>;
}

/**
 * Sessions of 4 s on an ensemble whose members give each other up after 2 s
 * (syncLimit 2 ticks of 1 s): a leader cut off from its followers steps down
 * before it could expire the sessions they can no longer forward to it.
 */
const SESSION_MS = 4000;
const SYNC_LIMIT_TICKS = 2;
/** Longer than the cell's disconnect grace (5 s): a cut this long would let a hasty primary give nodes up. */
const LONG_CUT_MS = 12_000;
const STEADY = "name: steady\ntype: service\nisolation: process\ninstances: 2\ncommand: [/bin/sleep, '3600']\nresources: { cpu: 0.1, memory: 16MiB }\nplacement: { maxPerNode: 1 }\n";

type JobRow = { id: string; status: string };
type NodeRow = { id: string; state: string; lastReportAt: number };

export function partitionSuite(label: string, scale: PartitionScale): void {
  const skip = !zookeeperInstalled() ? "ZooKeeper is not installed" : !nftablesAvailable() ? "needs nftables (/usr/sbin/nft) and root" : false;

  describe(`partition suite (${label}): 3 ZooKeeper servers, 2 managers, 2 agents, each on its own loopback address`, { skip, timeout: 900_000 }, () => {
    let ens: TestEnsemble;
    let c: TestCell;
    let net: Partitions;
    const hosts = ownAddresses(2, 2);
    const zkHosts = ["127.0.0.10", "127.0.0.11", "127.0.0.12"];
    /** Every job the API acknowledged: none may go missing. */
    const acknowledged = new Set<string>();
    let jobSeq = 0;

    before(async () => {
      ens = await TestEnsemble.start({ tickTimeMs: 1000, syncLimitTicks: SYNC_LIMIT_TICKS, hosts: zkHosts });
      c = await startTestCell({ managers: 2, agents: 2, externalZooKeeper: ens.connectString, sessionTimeout: `${SESSION_MS}ms`, stopTasksOnExit: false, hosts });
      net = Partitions.open(`${process.pid}`);
      await c.submit(STEADY);
      await c.waitJob("steady", (j) => j.taskList.length === 2 && j.taskList.every((x) => x.state === "running"), 30_000, "running");
    });

    after(async () => {
      net?.close();
      await closeCellAndTasks(c);
      await ens?.close();
      const tables = skip ? [] : leftoverTables().filter((t) => t.includes(`torca_test_${process.pid}`));
      assert.deepEqual(tables, [], "the run's nftables table is gone");
    });

    const say = (t: TestContext, line: string) => t.diagnostic(line);
    const pidOf = (id: string) => c.cell.daemons.get(id)!.process!.pid!;
    const agentIds = () => c.cell.layout.agents.map((a) => a.id);
    const managerIds = () => c.cell.layout.managers.map((m) => m.id);
    const allStarted = () => agentIds().flatMap((a) => startedInstances(c.cell.dir, a));
    const daemonLog = (id: string) => readFileSync(join(c.cell.dir, "logs", `${id}.log`), "utf8");
    /** The steady service's instances: "task#attempt@agent pid". */
    const steadyPicture = () =>
      allStarted()
        .filter((s) => s.taskId.startsWith("steady/") && s.state === "running" && s.pid !== undefined && pidAlive(s.pid))
        .map((s) => `${s.taskId}#${s.attempt}@${s.agent} pid ${s.pid}`)
        .sort();

    async function submitBatch(url: string): Promise<string> {
      const name = `p-${++jobSeq}`;
      const o = await submitOnce(c.api, url, name, batchJob(name, ["/bin/true"]));
      assert.equal(o.fate, "acked", `${name}: ${o.status ?? o.code} ${o.message ?? ""}`);
      acknowledged.add(name);
      return name;
    }

    /** Task ids with more than one live instance at once, across the agents. */
    function runningTwice(instances: StartedInstance[]): string[] {
      const live = instances.filter((s) => s.state !== "exited" && s.pid !== undefined && pidAlive(s.pid));
      const by = new Map<string, number>();
      for (const s of live) by.set(s.taskId, (by.get(s.taskId) ?? 0) + 1);
      return [...by].filter(([, n]) => n > 1).map(([id]) => id);
    }

    /** The checks every case ends with, once healed. */
    async function checkCell(t: TestContext, steadyBefore: string[]): Promise<void> {
      const p = await c.cell.waitForPrimary(60_000);
      await c.cell.waitForNodes(2, 60_000);
      const fresh = await submitBatch(p.url);
      await c.waitJob(fresh, (j) => j.status === "complete", 30_000, "complete");
      const jobs = new Map((await c.api.get(`${(await c.cell.waitForPrimary()).url}/v1/jobs`).json<{ jobs: JobRow[] }>()).jobs.map((j) => [j.id, j.status]));
      const lost = [...acknowledged].filter((n) => !jobs.has(n));
      const twice = runningTwice(allStarted());
      const steadyAfter = steadyPicture();
      say(t, `healed: primary ${c.cell.managerIdAt(p.url)} at epoch ${p.epoch}, 2 nodes ready, a new job ran; ${acknowledged.size} acknowledged jobs, ${lost.length} missing; ${twice.length} tasks running twice; steady service ${JSON.stringify(steadyAfter) === JSON.stringify(steadyBefore) ? "untouched (same attempts and PIDs)" : `changed: ${steadyBefore.join(", ")} → ${steadyAfter.join(", ")}`}`);
      assert.deepEqual(lost, [], "no acknowledged job lost");
      assert.deepEqual(twice, [], "no task instance running twice");
      assert.deepEqual(steadyAfter, steadyBefore, "no task restarted that did not need to be");
    }

    /** Runs one case between the steady picture and the cell checks; the partition is healed whatever happens. */
    async function partitionCase(t: TestContext, body: () => Promise<void>): Promise<void> {
      await c.cell.waitForNodes(2, 60_000);
      // A primary that acknowledges a job (after a case that failed, a deposed one may still answer for a while).
      await until("a primary that acknowledges a job", async () => {
        const name = `p-${++jobSeq}`;
        const o = await submitOnce(c.api, (await c.cell.waitForPrimary()).url, name, batchJob(name, ["/bin/true"]));
        if (o.fate === "acked") acknowledged.add(name);
        return o.fate === "acked";
      }, { timeoutMs: 60_000, intervalMs: 500 });
      // Both instances running (an earlier case that failed may have moved one): this case's baseline.
      const before = await until("both steady instances running", () => {
        const p = steadyPicture();
        return p.length === 2 ? p : undefined;
      }, { timeoutMs: 60_000, intervalMs: 200 });
      try {
        await body();
      } finally {
        net.heal();
      }
      await checkCell(t, before);
    }

    const nodes = async (url: string) => (await c.api.get(`${url}/v1/nodes`).json<{ nodes: NodeRow[] }>()).nodes;

    const cases: Record<PartitionCase, { title: string; run: (t: TestContext) => Promise<void> }> = {
      "primary-zookeeper": {
        title: "primary ↔ ZooKeeper: the primary fences itself, the backup takes over, the old one writes and dispatches nothing",
        run: (t) =>
          partitionCase(t, async () => {
            const old = await c.cell.waitForPrimary();
            const oldId = c.cell.managerIdAt(old.url);
            const logMark = daemonLog(oldId).length;
            const cutAt = Date.now();
            net.cutProcesses("primary", [pidOf(oldId)], zkHosts);
            const next = await until("a new primary", async () => {
              const backup = managerIds().find((m) => m !== oldId)!;
              const l = await c.cell.leaderAt(c.cell.daemons.get(backup)!.url);
              return l && l.isPrimary && l.epoch > old.epoch ? l : undefined;
            }, { timeoutMs: 30_000, intervalMs: 100 });
            const takeoverMs = Date.now() - cutAt;
            // The old primary, still serving HTTP, must neither accept a job nor dispatch one.
            const held = await submitOnce(c.api, old.url, "to-the-cut-primary", batchJob("to-the-cut-primary", ["/bin/true"]));
            // Asked of the new primary by URL: the cell's "who is primary" may still name the cut one.
            const viaNew = await submitBatch(next.url);
            await until(`${viaNew} complete on the new primary`, async () => (await c.api.get(`${next.url}/v1/jobs/${viaNew}`).json<JobRow>()).status === "complete", { timeoutMs: 30_000, intervalMs: 200 });
            const staleDispatches = allStarted().filter((s) => s.taskId.startsWith("to-the-cut-primary/"));
            say(t, `${oldId} (epoch ${old.epoch}) cut from the 3 ZooKeeper servers; ${c.cell.managerIdAt(next.url)} primary at epoch ${next.epoch} after ${seconds(takeoverMs)}, and ran ${viaNew}`);
            say(t, `a submission to the cut primary: ${held.fate} (${held.status ?? held.code} ${held.message ?? ""}); instances of it started: ${staleDispatches.length}`);
            assert.notEqual(held.fate, "acked", "the cut primary acknowledged nothing");
            assert.equal(staleDispatches.length, 0, "the cut primary dispatched nothing");
            // Cut off for longer than its session, it must assume the session lost and stop acting as primary.
            const fenced = await until("the old primary no longer claims to be primary", async () => {
              const l = await c.cell.leaderAt(old.url);
              return l && !l.isPrimary ? l : undefined;
            }, { timeoutMs: 3 * SESSION_MS, intervalMs: 100 }).catch(() => undefined);
            const log = daemonLog(oldId).slice(logMark);
            say(t, fenced ? `the old primary stopped claiming the primacy after ${seconds(Date.now() - cutAt)} (it names ${fenced.id})` : `the old primary still claims the primacy ${seconds(Date.now() - cutAt)} after the cut (its log: ${["connection lost", "fenced", "session expired"].filter((w) => log.includes(w)).join(", ") || "nothing notable"})`);
            assert.ok(fenced, "the primary fenced itself");
            await sleep(Math.max(0, LONG_CUT_MS - (Date.now() - cutAt)));
          }),
      },

      "primary-agents": {
        title: "primary ↔ agents only: tasks keep running, reports resume",
        run: (t) =>
          partitionCase(t, async () => {
            const p = await c.cell.waitForPrimary();
            const pHost = hosts[c.cell.managerIdAt(p.url)]!;
            for (const a of agentIds()) net.cut(pHost, hosts[a]!);
            const cutAt = Date.now();
            await sleep(LONG_CUT_MS);
            const during = await nodes(p.url);
            const still = await c.cell.waitForPrimary();
            net.heal();
            const healedAt = Date.now();
            const resumed = await until("reports from both agents after the heal", async () => {
              const n = await nodes(still.url);
              return n.filter((x) => x.state === "ready" && x.lastReportAt > healedAt).length === 2 ? n : undefined;
            }, { timeoutMs: 15_000, intervalMs: 200 });
            say(t, `primary ${c.cell.managerIdAt(p.url)} (${pHost}) cut from both agents for ${seconds(healedAt - cutAt)}; nodes meanwhile: ${during.map((n) => `${n.id} ${n.state}, last report ${seconds(healedAt - n.lastReportAt)} before the heal`).join("; ")}`);
            say(t, `reports resumed after ${seconds(Math.max(...resumed.map((n) => n.lastReportAt)) - healedAt)}; primary unchanged: ${still.url === p.url && still.epoch === p.epoch}`);
            assert.ok(during.every((n) => n.state === "ready"), "no node was given up while its session lived");
            assert.deepEqual([still.url, still.epoch], [p.url, p.epoch], "no failover");
          }),
      },

      "agent-zookeeper": {
        title: "agent ↔ ZooKeeper only: the node is disconnected, not lost, within the grace; no double run",
        run: (t) =>
          partitionCase(t, async () => {
            const agent = agentIds()[0]!;
            const p = await c.cell.waitForPrimary();
            net.cutProcesses("agent", [pidOf(agent)], zkHosts);
            const cutAt = Date.now();
            await sleep(LONG_CUT_MS);
            const during = (await nodes(p.url)).find((n) => n.id === agent);
            const twice = runningTwice(allStarted());
            say(t, `${agent} cut from ZooKeeper for ${seconds(Date.now() - cutAt)} (its session expires after ${SESSION_MS} ms; it still reaches the managers): node state ${during?.state ?? "absent"}, tasks running twice ${twice.length}`);
            assert.deepEqual(twice, [], "no task ran twice during the cut");
          }),
      },

      "agent-managers": {
        title: "agent ↔ managers only: its session lives, so its tasks stay where they are",
        run: (t) =>
          partitionCase(t, async () => {
            const agent = agentIds()[0]!;
            const p = await c.cell.waitForPrimary();
            for (const m of managerIds()) net.cut(hosts[agent]!, hosts[m]!);
            const cutAt = Date.now();
            await sleep(LONG_CUT_MS);
            const during = (await nodes(p.url)).find((n) => n.id === agent);
            say(t, `${agent} cut from both managers for ${seconds(Date.now() - cutAt)}, reaching ZooKeeper: node state ${during?.state ?? "absent"}, last report ${during ? seconds(Date.now() - during.lastReportAt) : "-"} ago`);
            assert.equal(during?.state, "ready", "a node whose session lives is not given up");
          }),
      },

      "client-primary": {
        title: "client ↔ primary: the CLI reaches a backup, and follows its redirect or says clearly that the primary is unreachable",
        run: (t) =>
          partitionCase(t, async () => {
            const p = await c.cell.waitForPrimary();
            const port = Number(new URL(p.url).port);
            const pHost = hosts[c.cell.managerIdAt(p.url)]!;
            // The CLI sends from 127.0.0.1; a reset refuses its connections at once, as a dead host would.
            net.cut("127.0.0.1", pHost, port, "reset");
            const env = { TORCA_MANAGER: c.cell.managerUrls.join(","), TORCA_TOKEN: c.cell.token };
            const t0 = Date.now();
            const list = await runTorca(["jobs"], env, 60_000);
            const file = join(c.cell.dir, "cli-job.yaml");
            writeFileSync(file, batchJob("via-cli", ["/bin/true"]));
            const submit = await runTorca(["submit", file], env, 60_000);
            if (submit.code === 0) acknowledged.add("via-cli");
            const ms = Date.now() - t0;
            say(t, `primary ${p.url} unreachable from 127.0.0.1: \`torca jobs\` → exit ${list.code}${list.code === 0 ? ` (${list.stdout.split("\n").length} lines)` : `: ${list.stderr.trim().split("\n")[0]}`}; \`torca submit\` → exit ${submit.code}: ${(submit.code === 0 ? submit.stdout : submit.stderr).trim().split("\n")[0]}; both in ${seconds(ms)}`);
            assert.equal(list.code, 0, `reads are served by the backup: ${list.stderr}`);
            if (submit.code !== 0) assert.match(submit.stderr, /primary|unreachable|unavailable|ECONNREFUSED|ECONNRESET/i, "the CLI says why the write failed");
            // A liveness bound, not a speed claim: the CLI re-sends an idempotent submission for up to
            // 30 s (a failover may be under way), then must give up and say why rather than hang.
            assert.ok(ms < 55_000, `the CLI answered instead of hanging (${ms} ms)`);
          }),
      },

      "zookeeper-server": {
        title: "one ZooKeeper server isolated from the others: clients move to the majority, no session expires, no failover",
        run: (t) =>
          partitionCase(t, async () => {
            const p = await c.cell.waitForPrimary();
            const victim = (await ens.leaderId())!;
            const m = ens.member(victim);
            const others = ens.members.filter((x) => x.id !== victim);
            const marks = new Map([...c.cell.daemons.keys()].map((id) => [id, daemonLog(id).length]));
            // Its own connections to its peers (from any source address), and theirs to its quorum and election ports.
            net.cutProcesses("zk", [m.server!.pid], others.map((x) => x.host));
            net.cutPortFromAny(m.host, m.quorumPort);
            net.cutPortFromAny(m.host, m.electionPort);
            const cutAt = Date.now();
            const q = await until("a leader among the other two", async () => {
              for (const o of others) if ((await ens.mode(o.id)) === "leader") return o.id;
              return undefined;
            }, { timeoutMs: 30_000, intervalMs: 200 });
            const quorumMs = Date.now() - cutAt;
            const viaPrimary = await submitBatch((await c.cell.waitForPrimary()).url);
            await sleep(3 * SESSION_MS);
            const expired = [...c.cell.daemons.keys()].map((id) => (daemonLog(id).slice(marks.get(id)).match(/zookeeper session expired/g) ?? []).length).reduce((a, b) => a + b, 0);
            const p1 = await c.cell.waitForPrimary();
            say(t, `ZooKeeper server ${victim} (the leader, ${m.host}) isolated from its peers; server ${q} leads after ${seconds(quorumMs)}; ${viaPrimary} acknowledged meanwhile; sessions expired: ${expired}; primary epoch ${p.epoch} → ${p1.epoch}`);
            assert.equal(expired, 0, "no session expired");
            assert.deepEqual([p1.url, p1.epoch], [p.url, p.epoch], "no failover");
          }),
      },

      "zookeeper-down": {
        title: "the whole ZooKeeper down for three session timeouts: tasks keep running, the cell resumes by itself",
        run: (t) =>
          partitionCase(t, async () => {
            const ids = ens.members.map((x) => x.id);
            const downAt = Date.now();
            for (const id of ids) await ens.kill(id, "SIGKILL");
            await sleep(3 * SESSION_MS);
            const alive = steadyPicture().length;
            for (const id of ids) await ens.restart(id);
            const q = await ens.waitQuorum();
            say(t, `all 3 ZooKeeper servers SIGKILLed, restarted ${seconds(Date.now() - downAt)} later (quorum after ${seconds(q.ms)}); steady instances alive while it was down: ${alive}`);
            assert.equal(alive, 2, "the tasks kept running while ZooKeeper was down");
          }),
      },
    };

    // TORCA_PARTITION_CASES=a,b runs only those of the scale's cases (the cell is set up all the same).
    const only = process.env.TORCA_PARTITION_CASES?.split(",").map((x) => x.trim());
    for (const name of scale.cases.filter((n) => !only || only.includes(n))) {
      const todo = scale.todo?.[name];
      test(cases[name].title, todo ? { todo } : {}, (t) => cases[name].run(t));
    }
  });
}
