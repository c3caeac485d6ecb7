import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseTaskFile } from "../../src/common/taskfile/index.js";
import { jobIdOf, type Job, type JobSpec, type TaskInstance, type TaskState } from "../../src/common/types.js";
import { retirements, runStatusOf, type RetentionPolicy, type Retirement } from "../../src/manager/retention/decide.js";
import { UsageLedger } from "../../src/manager/usage/ledger.js";
import { tallyOf } from "../../src/coord/store/task-tally.js";

const HOUR = 3_600_000;
const policy: RetentionPolicy = { terminalMs: HOUR, keepPerNamespace: 1000, batch: 100 };

const batchSpec = (name: string, namespace = "default", instances = 2): JobSpec => ({ ...parseTaskFile(`name: ${name}\nnamespace: ${namespace}\ntype: batch\ncommand: [x]\n`), instances });
const cronSpec = (name: string): JobSpec => ({ ...parseTaskFile(`name: ${name}\ntype: batch\nschedule: "*/5 * * * *"\ncommand: [x]\n`), instances: 1 });

function job(spec: JobSpec, o: Partial<Job> = {}): Job {
  return { id: jobIdOf(spec.namespace, spec.name), spec, source: "", status: "pending", desired: "run", submittedAt: 1000, updatedAt: 1000, ...o };
}

function task(j: Job, index: number, state: TaskState, finishedAt: number | undefined, run = 0): TaskInstance {
  return { id: `${j.id}/${index}`, jobId: j.id, index, run, desired: "run", state, attempt: 1, restartsOnNode: 0, migrations: 0, createdAt: 1000, updatedAt: finishedAt ?? 1000, ...(finishedAt !== undefined ? { finishedAt } : {}), events: [] };
}

/** A state of jobs and their tasks, as the state store holds it. */
function view(entries: [Job, TaskInstance[]][]) {
  const jobs = new Map(entries.map(([j]) => [j.id, j]));
  const tasks = new Map(entries.map(([j, ts]) => [j.id, ts]));
  return { jobs, tasksOf: (id: string) => tasks.get(id) ?? [], taskTally: (id: string) => tallyOf(tasks.get(id) ?? []) };
}

const finishedBatch = (name: string, at: number, namespace = "default", state: TaskState = "completed"): [Job, TaskInstance[]] => {
  const j = job(batchSpec(name, namespace), { status: state === "completed" ? "complete" : "failed" });
  return [j, [task(j, 0, "completed", at), task(j, 1, state, at)]];
};

const ids = (rs: Retirement[]) => rs.map((r) => (r.kind === "job" ? r.job.id : `${r.job.id}#${r.run.run}`));

describe("retention decides what leaves ZooKeeper", () => {
  const now = 10 * HOUR;

  test("a job with a task not finished stays, and its tasks are not even read (every tick asks, for every job)", () => {
    const j = job(batchSpec("busy"));
    const state = view([[j, [task(j, 0, "completed", 0), task(j, 1, "running", undefined)]], finishedBatch("old", 0)]);
    const rs = retirements({ ...state, tasksOf: (id) => (id === j.id ? assert.fail("the unfinished job's tasks were read") : state.tasksOf(id)) }, policy, now);
    assert.deepEqual(ids(rs), ["old"]);
  });

  test("a terminal job leaves once it finished longer ago than the retention, with its one run and every task", () => {
    const rs = retirements(view([finishedBatch("old", now - HOUR - 1), finishedBatch("recent", now - HOUR + 1)]), policy, now);
    assert.deepEqual(ids(rs), ["old"]);
    const r = rs[0]!;
    assert.equal(r.kind, "job");
    if (r.kind !== "job") return;
    assert.deepEqual(r.runs.map((x) => ({ run: x.run, status: x.status, tasks: x.tasks.length })), [{ run: 0, status: "complete", tasks: 2 }]);
  });

  test("a failed job is archived as failed", () => {
    const rs = retirements(view([finishedBatch("bad", 0, "default", "failed")]), policy, now);
    assert.equal(rs[0]?.kind === "job" && rs[0].runs[0]!.status, "failed");
  });

  test("live jobs are never touched, however old: running, pending, a service, a killed job still stopping", () => {
    const running = job(batchSpec("running"), { status: "running" });
    const pending = job(batchSpec("pending"));
    const service = job({ ...batchSpec("svc"), type: "service" }, { status: "running" });
    const stopping = job(batchSpec("stopping"), { desired: "stop", status: "running" });
    const rs = retirements(
      view([
        [running, [task(running, 0, "completed", 0), task(running, 1, "running", undefined)]],
        [pending, []],
        [service, [task(service, 0, "running", undefined), task(service, 1, "failed", 0)]],
        [stopping, [task(stopping, 0, "killed", 0), task(stopping, 1, "running", undefined)]],
      ]),
      policy,
      now,
    );
    assert.deepEqual(rs, []);
  });

  test("a killed job leaves once all its tasks are terminal, as dead", () => {
    const j = job(batchSpec("killed"), { desired: "stop", status: "dead" });
    const rs = retirements(view([[j, [task(j, 0, "killed", 0), task(j, 1, "completed", 0)]]]), policy, now);
    assert.equal(rs[0]?.kind === "job" && rs[0].runs[0]!.status, "dead");
  });

  test("beyond keepPerNamespace the oldest terminal jobs leave first, before their time, per namespace", () => {
    const state = view([
      finishedBatch("a1", now - 3000, "a"),
      finishedBatch("a2", now - 2000, "a"),
      finishedBatch("a3", now - 1000, "a"),
      finishedBatch("b1", now - 5000, "b"),
    ]);
    assert.deepEqual(ids(retirements(state, { ...policy, keepPerNamespace: 1 }, now)), ["a:a1", "a:a2"]);
    assert.deepEqual(ids(retirements(state, { ...policy, keepPerNamespace: 0 }, now)), ["b:b1", "a:a1", "a:a2", "a:a3"]);
  });

  test("at most `batch` retire at once, the oldest first", () => {
    const state = view([finishedBatch("c", 3000), finishedBatch("a", 1000), finishedBatch("b", 2000)]);
    assert.deepEqual(ids(retirements(state, { ...policy, batch: 2 }, now)), ["a", "b"]);
  });

  test("a cron job stays; a run a newer firing superseded is archived at once (its records are about to be reused), before anything else", () => {
    const j = job(cronSpec("nightly"), { cron: { runs: 3 }, status: "complete" });
    const rs = retirements(view([finishedBatch("old", 0), [j, [task(j, 0, "completed", now - 10, 2)]]]), policy, now);
    assert.deepEqual(ids(rs), ["nightly#2", "old"]);
    assert.equal(rs[0]?.kind === "run" && rs[0].deleteTasks, false);
  });

  test("a cron job's last run leaves (its task records deleted) after the retention, and only once", () => {
    const j = job(cronSpec("nightly"), { cron: { runs: 3 }, status: "complete" });
    const tasks = [task(j, 0, "completed", now - HOUR - 1, 3)];
    const rs = retirements(view([[j, tasks]]), policy, now);
    assert.deepEqual(ids(rs), ["nightly#3"]);
    assert.equal(rs[0]?.kind === "run" && rs[0].deleteTasks, true);
    assert.deepEqual(retirements(view([[j, [task(j, 0, "completed", now - 10, 3)]]]), policy, now), [], "within the retention it stays");
    const retired = { ...j, cron: { runs: 3, retiredRun: 3 } };
    assert.deepEqual(retirements(view([[retired, tasks]]), policy, now), [], "a run already retired is not retired again");
  });

  test("a cron run still going is not touched", () => {
    const j = job(cronSpec("nightly"), { cron: { runs: 3 }, status: "running" });
    assert.deepEqual(retirements(view([[j, [task(j, 0, "running", undefined, 3)]]]), policy, 100 * HOUR), []);
  });

  test("a stopped cron job leaves whole, each run with its own status", () => {
    const spec = { ...cronSpec("c"), instances: 2 };
    const j = job(spec, { desired: "stop", cron: { runs: 5 }, status: "dead" });
    const rs = retirements(view([[j, [task(j, 0, "completed", 0, 4), task(j, 1, "killed", 0, 5)]]]), policy, now);
    assert.equal(rs[0]?.kind, "job");
    if (rs[0]?.kind !== "job") return;
    assert.deepEqual(rs[0].runs.map((r) => [r.run, r.status]), [[4, "complete"], [5, "dead"]]);
  });

  test("a run's status: complete when all completed, dead when one was killed, failed otherwise", () => {
    const j = job(batchSpec("x"));
    assert.equal(runStatusOf([task(j, 0, "completed", 0)]), "complete");
    assert.equal(runStatusOf([task(j, 0, "completed", 0), task(j, 1, "killed", 0)]), "dead");
    assert.equal(runStatusOf([task(j, 0, "failed", 0), task(j, 1, "lost", 0)]), "failed");
  });
});

describe("the usage ledger totals the agents' readings per task", () => {
  const report = (tasks: object[]) => ({ agentId: "a", tasks, cachedPackages: [] }) as Parameters<UsageLedger["note"]>[0];

  test("CPU is the last cumulative reading, memory integrates the readings over report intervals, peak is the highest seen, wall is start to finish", () => {
    const l = new UsageLedger();
    l.note(report([{ taskId: "j/0", attempt: 1, state: "running", startedAt: 0, usage: { cpuNs: 1e9, memoryBytes: 100, memoryPeakBytes: 150 } }]), 1000);
    l.note(report([{ taskId: "j/0", attempt: 1, state: "running", startedAt: 0, usage: { cpuNs: 3e9, memoryBytes: 300, memoryPeakBytes: 320 } }]), 3000);
    l.note(report([{ taskId: "j/0", attempt: 1, state: "exited", startedAt: 0, finishedAt: 4000, usage: { cpuNs: 3.5e9, memoryPeakBytes: 400 } }]), 4000);
    assert.deepEqual(l.totals("j/0"), { cpuSeconds: 3.5, memoryByteSeconds: ((100 + 300) / 2) * 2, peakMemoryBytes: 400, wallSeconds: 4 });
  });

  test("attempts add up; a repeated report changes nothing; an unknown task has no usage", () => {
    const l = new UsageLedger();
    const first = { taskId: "j/0", attempt: 1, state: "exited", startedAt: 0, finishedAt: 2000, usage: { cpuNs: 1e9 } };
    l.note(report([first]), 2000);
    l.note(report([first]), 2500);
    l.note(report([{ taskId: "j/0", attempt: 2, state: "exited", startedAt: 3000, finishedAt: 4000, usage: { cpuNs: 2e9 } }]), 4000);
    assert.deepEqual(l.totals("j/0"), { cpuSeconds: 3, memoryByteSeconds: 0, peakMemoryBytes: 0, wallSeconds: 3 });
    assert.deepEqual(l.totals("other/0"), { cpuSeconds: 0, memoryByteSeconds: 0, peakMemoryBytes: 0, wallSeconds: 0 });
    l.forget("j/0");
    assert.equal(l.size, 0);
  });
});
