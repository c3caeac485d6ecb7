/**
 * Reclamation specification (docs/reclamation.md): the reservation estimate,
 * placement on reclaimed capacity, eviction back to pending, and the agent's
 * throttle-then-evict policy.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CgroupV1 } from "../../agent/driver/cgroup.js";
import { decideReclaim, MIN_CAP_CORES, type TaskLoad } from "../../agent/reclaim/policy.js";
import { runQueueWaitNs, waitRate } from "../../agent/reclaim/run-queue.js";
import { UsageHistory } from "../../agent/usage-history.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import type { ExitInfo, Job, TaskInstance } from "../../src/common/types.js";
import { evicted } from "../../src/manager/lifecycle/evicted.js";
import { newTask, dispatched } from "../../src/manager/lifecycle/transitions.js";
import { AllocationBuilder } from "../../src/manager/primary/allocations.js";
import { reconcileReport } from "../../src/manager/primary/reconcile.js";
import { placementRound } from "../../src/manager/primary/round.js";
import { placeTasks } from "../../src/manager/scheduler/index.js";
import { freshEstimate, nextEstimate, unusedReservation, WINDOW_BUCKETS, type TaskEstimate } from "../../src/manager/usage/estimate.js";
import { mayUseReclaimed, ReservationEstimates } from "../../src/manager/usage/reservations.js";
import { GiB, makeAllocation, makeNode, makeSpec, makeTasks } from "./scheduler-harness.js";

const MiB = 1024 ** 2;
const opts = { margin: 0.2, windowMs: 60_000 };
const request = { cpu: 2, memory: 1024 * MiB, disk: 0 };

function assertNear(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-6, `${actual} is not ${expected}`);
}

/** Feeds readings of `cores` and `memory` every second from `from` for `seconds`, starting at cumulative `cpuNs`. */
function feed(e: TaskEstimate, from: number, seconds: number, cores: number, memory: number, cpuNs = 0): { e: TaskEstimate; cpuNs: number; at: number } {
  let at = from;
  for (let i = 0; i < seconds; i++) {
    at += 1000;
    cpuNs += cores * 1e9;
    e = nextEstimate(e, { cpuNs, memoryBytes: memory }, request, at, opts);
  }
  return { e, cpuNs, at };
}

describe("reservation estimate", () => {
  test("a fresh attempt is estimated at its request", () => {
    assert.deepEqual(freshEstimate(request, 1, 0).reservation, { cpu: 2, memory: 1024 * MiB });
  });

  test("an idle task decays toward its peak plus margin, never below it, within about a window", () => {
    const first = nextEstimate(freshEstimate(request, 1, 0, 0), { cpuNs: 0.1e9, memoryBytes: 100 * MiB }, request, 1000, opts);
    assert.ok(first.reservation.cpu > 1.8, `one second in, still near the request: ${first.reservation.cpu}`);
    const { e } = feed(first, 1000, 90, 0.1, 100 * MiB, 0.1e9);
    assert.ok(Math.abs(e.reservation.cpu - 0.12) < 0.01, `cpu ${e.reservation.cpu}`);
    assert.ok(e.reservation.memory >= 120 * MiB && e.reservation.memory < 125 * MiB, `memory ${e.reservation.memory / MiB} MiB`);
  });

  test("a rise in use is taken at once, capped at the request; never below the latest reading", () => {
    const idle = feed(freshEstimate(request, 1, 0, 0), 0, 120, 0.1, 100 * MiB);
    const busy = nextEstimate(idle.e, { cpuNs: idle.cpuNs + 1.5e9, memoryBytes: 900 * MiB }, request, idle.at + 1000, opts);
    assertNear(busy.reservation.cpu, 1.8);
    assert.equal(busy.reservation.memory, 1024 * MiB);
    assertNear(unusedReservation(request, busy).cpu, 0.2);
    assert.equal(unusedReservation(request, busy).memory, 0);
  });

  test("the peak of the window holds the estimate up until it leaves the window", () => {
    const idle = feed(freshEstimate(request, 1, 0, 0), 0, 120, 0.1, 100 * MiB);
    const spike = feed(idle.e, idle.at, 1, 1.0, 100 * MiB, idle.cpuNs);
    const soon = feed(spike.e, spike.at, 10, 0.1, 100 * MiB, spike.cpuNs);
    assertNear(soon.e.reservation.cpu, 1.2);
    const later = feed(soon.e, soon.at, 120, 0.1, 100 * MiB, soon.cpuNs);
    assert.ok(later.e.reservation.cpu < 0.13, `${later.e.reservation.cpu}`);
  });

  test("works out rates between the agent's readings, not between report arrivals: a report right after the agent's sample is not a burst", () => {
    // The agent samples every second; reports arrive whenever a task changes and carry its latest sample.
    let e = freshEstimate(request, 1, 0);
    e = nextEstimate(e, { cpuNs: 0, memoryBytes: MiB, sampledAt: 1000 }, request, 1000, opts);
    e = nextEstimate(e, { cpuNs: 0, memoryBytes: MiB, sampledAt: 1000 }, request, 1990, opts);
    e = nextEstimate(e, { cpuNs: 20e6, memoryBytes: MiB, sampledAt: 2000 }, request, 2010, opts);
    assertNear(e.usage?.cpu ?? NaN, 0.02);
    const same = nextEstimate(e, { cpuNs: 20e6, memoryBytes: MiB, sampledAt: 2000 }, request, 2500, opts);
    assert.equal(same, e, "the same reading again changes nothing");
  });

  test("holds at most one point per bucket of the window, however often readings come", () => {
    let e = freshEstimate(request, 1, 0, 0);
    for (let at = 100; at <= 300_000; at += 100) e = nextEstimate(e, { cpuNs: at * 1e5, memoryBytes: MiB }, request, at, opts);
    assert.ok(e.points.length <= WINDOW_BUCKETS + 1, `${e.points.length} points`);
    assertNear(e.reservation.cpu, 0.12);
  });

  test("estimates per node: prod tasks lend request − reservation; a new attempt starts over", () => {
    const est = new ReservationEstimates(opts);
    const jobs = new Map<string, Job>([["web", { id: "web", spec: { ...makeSpec("web", { cpu: 2 }), priority: 200 } } as Job], ["crunch", { id: "crunch", spec: makeSpec("crunch", { cpu: 1 }) } as Job]]);
    const requestOf = (id: string) => jobs.get(id.split("/")[0] as string)?.spec.resources;
    for (let s = 0; s <= 120; s++) {
      est.note({ agentId: "n1", cachedPackages: [], tasks: [
        { taskId: "web/0", attempt: 1, state: "running", startedAt: 0, usage: { cpuNs: s * 0.1e9, memoryBytes: 10 * MiB } },
        { taskId: "crunch/0", attempt: 1, state: "running", startedAt: 0, usage: { cpuNs: s * 0.1e9, memoryBytes: 10 * MiB } },
      ] }, s * 1000, requestOf);
    }
    const running = [{ id: "web/0", jobId: "web", attempt: 1, nodeId: "n1" }, { id: "crunch/0", jobId: "crunch", attempt: 1, nodeId: "n1" }] as TaskInstance[];
    const lent = est.reclaimableByNode(jobs, running, 120_000).get("n1");
    assert.ok(lent && Math.abs(lent.cpu - 1.88) < 0.01, `only the prod task lends: ${JSON.stringify(lent)}`);
    est.note({ agentId: "n1", cachedPackages: [], tasks: [
      { taskId: "web/0", attempt: 1, state: "running", startedAt: 0, usage: { cpuNs: 121 * 0.1e9, memoryBytes: 10 * MiB } },
      { taskId: "fill/0", attempt: 1, state: "exited", evicted: "cpu needed" },
    ] }, 121_000, requestOf);
    assert.equal(est.reclaimableByNode(jobs, running, 121_000).get("n1"), undefined, "a node that just evicted lends nothing");
    assert.ok(est.reclaimableByNode(jobs, running, 181_000).get("n1"), "for one window");
    assert.equal(est.of({ id: "web/0", attempt: 2, nodeId: "n1" }), undefined);
    est.note({ agentId: "n1", cachedPackages: [], tasks: [] }, 200_000, requestOf);
    assert.equal(est.size, 0, "tasks the node no longer runs are forgotten");
  });

  test("a task that moved keeps its new node's estimate when its old node reports without it; each node forgets only its own", () => {
    const est = new ReservationEstimates(opts);
    const requestOf = () => ({ cpu: 1, memory: GiB, disk: 0 });
    const running = (taskId: string, attempt: number) => ({ taskId, attempt, state: "running" as const, startedAt: 0 });
    est.note({ agentId: "n1", cachedPackages: [], tasks: [running("a/0", 1), running("b/0", 1)] }, 0, requestOf);
    est.note({ agentId: "n2", cachedPackages: [], tasks: [running("a/0", 2), running("c/0", 1)] }, 1000, requestOf);
    est.note({ agentId: "n1", cachedPackages: [], tasks: [running("b/0", 1)] }, 2000, requestOf);
    assert.ok(est.of({ id: "a/0", attempt: 2, nodeId: "n2" }), "the moved task's estimate on its new node");
    assert.equal(est.of({ id: "a/0", attempt: 1, nodeId: "n1" }), undefined);
    assert.equal(est.size, 3);
    est.note({ agentId: "n2", cachedPackages: [], tasks: [] }, 3000, requestOf);
    assert.equal(est.size, 1, "n2's tasks forgotten, n1's kept");
    assert.ok(est.of({ id: "b/0", attempt: 1, nodeId: "n1" }));
  });
});

describe("placement on reclaimed capacity", () => {
  const node = makeNode("n1", { cpu: 4, memory: 8 * GiB });
  const prod = makeAllocation("web/0", "n1", { cpu: 3, memory: 4 * GiB, priority: 200 });
  const batch = { ...makeSpec("crunch", { cpu: 1, memory: GiB }), type: "batch" as const, instances: 3 };

  test("without reclamation batch work fits in what requests leave", () => {
    const r = placeTasks(makeTasks(batch), { nodes: [node], allocations: [prod], reclaimable: new Map([["n1", { cpu: 2.5, memory: 3 * GiB }]]) });
    assert.equal(r.placements.length, 1, "not reclaimable: the lent capacity is not for it");
    assert.equal(r.placements[0]?.reclaimed, undefined);
  });

  test("a reclaimable task counts prod at its estimate; placements beyond the free capacity are marked reclaimed", () => {
    const tasks = makeTasks(batch).map((t) => ({ ...t, reclaimable: true }));
    const r = placeTasks(tasks, { nodes: [node], allocations: [prod], reclaimable: new Map([["n1", { cpu: 2.5, memory: 3 * GiB }]]) });
    assert.equal(r.placements.length, 3);
    assert.deepEqual(r.placements.map((p) => p.reclaimed === true), [false, true, true]);
  });

  test("what is lent is used once; the rest is refused with the usual reason", () => {
    const tasks = makeTasks({ ...batch, instances: 5 }).map((t) => ({ ...t, reclaimable: true }));
    const r = placeTasks(tasks, { nodes: [node], allocations: [prod], reclaimable: new Map([["n1", { cpu: 2.5, memory: 8 * GiB }]]) });
    assert.equal(r.placements.length, 3);
    assert.match(r.unplaced[0]?.summary ?? "", /cpu exhausted/);
  });

  test("prod tasks are still placed against requests", () => {
    const web = { ...makeSpec("web2", { cpu: 2, memory: GiB }), priority: 200 };
    const r = placeTasks(makeTasks(web), { nodes: [node], allocations: [prod], reclaimable: new Map([["n1", { cpu: 2.5, memory: 3 * GiB }]]) });
    assert.equal(r.placements.length, 0);
  });

  test("which jobs may: batch below prod that did not opt out", () => {
    const job = (text: string) => ({ spec: parseTaskFile(`name: j\ncommand: [x]\n${text}`) }) as Job;
    assert.equal(mayUseReclaimed(job("type: batch\n")), true);
    assert.equal(mayUseReclaimed(job("type: batch\nreclaimable: false\n")), false);
    assert.equal(mayUseReclaimed(job("type: batch\npriority: prod\n")), false);
    assert.equal(mayUseReclaimed(job("type: service\nports: [{name: http}]\n")), false);
    assert.throws(() => parseTaskFile("name: j\ncommand: [x]\nreclaimable: maybe\n"), /not a boolean/);
  });
});

describe("eviction back to pending", () => {
  const job = { id: "crunch", spec: { ...makeSpec("crunch"), type: "batch" } } as Job;
  const exit: ExitInfo = { exitCode: null, signal: "SIGTERM", oomKilled: false, reason: "killed by SIGTERM" };

  test("an evicted attempt is pending again, with no restart or migration counted and the reclaimed mark gone", () => {
    const running = { ...dispatched(newTask(job, 0, 0, 0), "n1", 10), state: "running" as const, reclaimed: true, restartsOnNode: 1 };
    const next = evicted(running, "cpu needed", exit, 20, 30);
    assert.equal(next.state, "pending");
    assert.equal(next.nodeId, undefined);
    assert.equal(next.reclaimed, undefined);
    assert.equal(next.migrations, 0);
    assert.equal(next.restartsOnNode, 0);
    assert.equal(next.attempt, running.attempt);
    assert.equal(next.avoidNodes, undefined, "the node is not avoided: the task did nothing wrong there");
    assert.equal(next.events.at(-1)?.type, "evicted");
    assert.match(next.reason ?? "", /evicted from n1: cpu needed/);
  });

  test("a new attempt clears the reclaimed mark (the round sets it again when it applies)", () => {
    const running = { ...dispatched(newTask(job, 0, 0, 0), "n1", 10), reclaimed: true };
    assert.equal(dispatched({ ...running, state: "pending" }, "n2", 40).reclaimed, undefined);
  });
});

describe("agent: throttle, then evict", () => {
  const allocatable = { cpu: 2, memory: 4 * GiB };
  const prod = (cpu: number, memory = 100 * MiB): TaskLoad => ({ taskId: "web/0", attempt: 1, reclaimed: false, request: { cpu: 1.6, memory: GiB }, usage: { cpu, memory } });
  const batch = (i: number, memory = 50 * MiB): TaskLoad => ({ taskId: `crunch/${i}`, attempt: 1, reclaimed: true, request: { cpu: 0.4, memory: 256 * MiB }, usage: { cpu: 0.4, memory }, startedAt: i });
  const o = { margin: 0.1, evictAfterMs: 5000 };

  test("while the owners idle, reclaimed tasks run at their own quota", () => {
    const d = decideReclaim({ allocatable, tasks: [prod(0.05), batch(0), batch(1), batch(2)], now: 0 }, o);
    assert.deepEqual([...d.caps.values()], [0.4, 0.4, 0.4]);
    assert.deepEqual(d.evict, []);
    assert.equal(d.throttledSince, undefined);
  });

  test("when the owners' use rises, reclaimed tasks share what is left; after evictAfter the youngest go until the rest fit", () => {
    const tasks = [prod(1.6), batch(0), batch(1), batch(2)];
    const first = decideReclaim({ allocatable, tasks, now: 1000 }, o);
    assert.ok([...first.caps.values()].every((c) => Math.abs(c - 0.4 / 3) < 1e-9), JSON.stringify([...first.caps]));
    assert.equal(first.throttledSince, 1000);
    assert.deepEqual(first.evict, []);
    const still = decideReclaim({ allocatable, tasks, now: 5999, throttledSince: first.throttledSince as number }, o);
    assert.deepEqual(still.evict, []);
    const late = decideReclaim({ allocatable, tasks, now: 6000, throttledSince: first.throttledSince as number }, o);
    assert.deepEqual(late.evict.map((e) => e.taskId), ["crunch/2", "crunch/1"]);
    assert.deepEqual([...late.caps], [["crunch/0", 0.4]]);
    assert.equal(late.throttledSince, undefined);
  });

  test("a break in the pressure restarts the count", () => {
    const throttled = decideReclaim({ allocatable, tasks: [prod(1.6), batch(0), batch(1)], now: 1000 }, o);
    const eased = decideReclaim({ allocatable, tasks: [prod(0.1), batch(0), batch(1)], now: 3000, throttledSince: throttled.throttledSince as number }, o);
    assert.equal(eased.throttledSince, undefined);
    const again = decideReclaim({ allocatable, tasks: [prod(1.6), batch(0), batch(1)], now: 7000 }, o);
    assert.deepEqual(again.evict, []);
  });

  test("memory the owners need evicts at once; the cap never goes below the kernel's least", () => {
    const hungry = { ...prod(2, 3.9 * GiB), request: { cpu: 2, memory: 4 * GiB } };
    const d = decideReclaim({ allocatable, tasks: [hungry, batch(0, 60 * MiB)], now: 0 }, o);
    assert.deepEqual(d.evict.map((e) => e.taskId), ["crunch/0"]);
    assert.match(d.evict[0]?.why ?? "", /memory/);
    const squeezed = decideReclaim({ allocatable, tasks: [{ ...prod(2), request: { cpu: 2, memory: GiB } }, batch(0)], now: 0 }, o);
    assert.equal(squeezed.caps.get("crunch/0"), MIN_CAP_CORES);
  });
});

describe("agent: run-queue wait counts as demand", () => {
  test("the wait of every live thread of the task's cpu cgroup is summed; a rate is never negative", async () => {
    const root = await mkdtemp(join(tmpdir(), "torca-runq-"));
    try {
      const cg = new CgroupV1(join(root, "cgroup"), "torca");
      await mkdir(cg.dir("cpu", "t1"), { recursive: true });
      await writeFile(join(cg.dir("cpu", "t1"), "tasks"), "11\n12\n13\n");
      for (const [tid, wait] of [["11", 5e8], ["12", 2.5e8]] as const) {
        await mkdir(join(root, "proc", tid), { recursive: true });
        await writeFile(join(root, "proc", tid, "schedstat"), `900000 ${wait} 7\n`);
      }
      assert.equal(await runQueueWaitNs(cg, "t1", join(root, "proc")), 7.5e8, "thread 13 is gone: it counts nothing");
      assert.equal(await runQueueWaitNs(cg, "gone", join(root, "proc")), undefined);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    assert.equal(waitRate(undefined, 1000, 5e8), undefined);
    assert.equal(waitRate({ at: 0, ns: 0 }, 1000, 5e8), 0.5);
    assert.equal(waitRate({ at: 0, ns: 9e8 }, 1000, 5e8), 0);
  });
});

describe("agent: the latest usage sample enforcement reads", () => {
  test("is the newest of the current attempt's series, also once the ring has wrapped", () => {
    const h = new UsageHistory(1000, 3000);
    assert.equal(h.latestOf("a/0"), undefined);
    for (let s = 0; s <= 5; s++) h.recordTask("a/0", 1, s * 1000, { cpuNs: s * 0.5e9, memoryBytes: s }, 0);
    assert.deepEqual(h.latestOf("a/0"), { attempt: 1, sample: { at: 5000, cpu: 0.5, memory: 5 } });
    h.recordTask("a/0", 2, 6000, { cpuNs: 0, memoryBytes: 1 });
    assert.equal(h.latestOf("a/0"), undefined, "a new attempt has no sample before its second reading");
  });
});

describe("the primary: rounds and reports", () => {
  const node = makeNode("n1", { cpu: 2, memory: 8 * GiB });
  const web = { id: "web", spec: { ...makeSpec("web", { cpu: 1.5, memory: GiB }), priority: 200 }, source: "", status: "running", desired: "run", submittedAt: 0, updatedAt: 0 } as Job;
  const fill = { ...web, id: "fill", spec: { ...makeSpec("fill", { cpu: 0.4, memory: 64 * MiB }), type: "batch" as const, instances: 3 } } as Job;
  const base = { run: 0, desired: "run" as const, restartsOnNode: 0, migrations: 0, createdAt: 0, updatedAt: 0, events: [] };
  const webTask: TaskInstance = { ...base, id: "web/0", jobId: "web", index: 0, state: "running", attempt: 1, nodeId: "n1" };
  const pending = [0, 1, 2].map((i): TaskInstance => ({ ...base, id: `fill/${i}`, jobId: "fill", index: i, state: "pending", attempt: 0 }));
  const tasks = [webTask, ...pending];
  const view = { jobs: new Map([["web", web], ["fill", fill]]), tasksWhere: (d: string, st: string) => tasks.filter((t) => t.desired === d && t.state === st) };

  test("with what the node lends, batch tasks beyond the free capacity are dispatched marked reclaimed; without, they wait", () => {
    const on = placementRound(view, [node], new AllocationBuilder(), 1000, { reclamation: { reclaimable: new Map([["n1", { cpu: 1.2, memory: 0 }]]) } });
    assert.deepEqual(on.dispatches.map((t) => [t.id, t.reclaimed === true]), [["fill/0", false], ["fill/1", true], ["fill/2", true]]);
    const off = placementRound(view, [node], new AllocationBuilder(), 1000);
    assert.deepEqual(off.dispatches.map((t) => t.id), ["fill/0"]);
  });

  test("an eviction the agent reports sends the task back to pending; a stop wanted meanwhile makes it killed", () => {
    const running: TaskInstance = { ...base, id: "fill/1", jobId: "fill", index: 1, state: "running", attempt: 2, nodeId: "n1", reclaimed: true };
    const report = (t: TaskInstance) => ({
      agentId: "n1",
      cachedPackages: [],
      tasks: [{ taskId: t.id, attempt: 2, state: "exited" as const, evicted: "cpu needed", exit: { exitCode: null, signal: "SIGTERM", oomKilled: false, reason: "killed by SIGTERM" } }],
    });
    const viewOf = (t: TaskInstance) => ({ jobs: view.jobs, task: () => t, tasksOnNode: () => [t] });
    const d = reconcileReport(report(running), viewOf(running), 5000, { presumeMissing: false, missingGraceMs: 0 });
    assert.deepEqual(d.updates.map((t) => [t.state, t.events.at(-1)?.type]), [["pending", "evicted"]]);
    assert.deepEqual(d.alerts, []);
    const stopping = { ...running, desired: "stop" as const };
    assert.equal(reconcileReport(report(stopping), viewOf(stopping), 5000, { presumeMissing: false, missingGraceMs: 0 }).updates[0]?.state, "killed");
  });
});
