/**
 * The deployment state machine, specified: rollouts are simulated step by
 * step (instances start, turn healthy, drain and stop as the primary and the
 * agents would make them), with time passed in. No ZooKeeper, no clock.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TERMINAL_TASK_STATES, type Deployment, type TaskInstance, type UpdatePolicy } from "../../src/common/types.js";
import { TASKFILE_DEFAULTS } from "../../src/common/taskfile/index.js";
import { stepDeployment, type DeploymentAction, type DeploymentInput } from "../../src/manager/deployment/machine.js";

const T0 = 1_000_000;
const SECOND = 1000;

function policy(p: Partial<UpdatePolicy> = {}): UpdatePolicy {
  return { ...TASKFILE_DEFAULTS.update, minHealthyTimeMs: SECOND, healthyDeadlineMs: 30 * SECOND, progressDeadlineMs: 60 * SECOND, ...p };
}

function deployment(version: number, d: Partial<Deployment> = {}): Deployment {
  return { id: `d${version}`, version, status: "running", description: "", startedAt: T0, progressAt: T0, healthy: 0, promoted: false, stableVersion: version - 1, ...d };
}

function instance(index: number, version: number, extra: Partial<TaskInstance> = {}): TaskInstance {
  return {
    id: `web/${index}`, jobId: "web", index, run: 0, desired: "run", state: "running", attempt: 1, restartsOnNode: 0, migrations: 0,
    createdAt: 0, updatedAt: 0, events: [], version, versionSince: 0, startedAt: 0, healthy: true, healthySince: 0, ...extra,
  };
}

/**
 * A cell in miniature: applies the machine's actions as the primary does, and
 * moves instances on as agents would: a started instance runs one second
 * later and passes its checks a second after that (unless `neverHealthy`);
 * a stopped one is gone one second later (its drain).
 */
class Sim {
  tasks: TaskInstance[];
  d: Deployment;
  now = T0;
  reverts: number[] = [];
  /** Per step: instances serving (running, healthy, wanted) and instances wanted (stopping ones drain outside the count, as in Kubernetes and Nomad). */
  serving: number[] = [];
  alive: number[] = [];

  constructor(
    tasks: TaskInstance[],
    d: Deployment,
    readonly p: UpdatePolicy,
    readonly instances = 4,
    readonly opts: { neverHealthy?: boolean; inPlace?: (v: number) => boolean } = {},
  ) {
    this.tasks = tasks;
    this.d = d;
  }

  input(): DeploymentInput {
    return { deployment: this.d, policy: this.p, instances: this.instances, hasChecks: true, tasks: this.tasks, inPlace: this.opts.inPlace ?? (() => false), now: this.now };
  }

  step(): DeploymentAction[] {
    const r = stepDeployment(this.input());
    this.apply(r.actions);
    this.d = r.deployment;
    return r.actions;
  }

  apply(actions: DeploymentAction[]): void {
    for (const a of actions) {
      if (a.kind === "revert") {
        this.reverts.push(a.toVersion);
        continue;
      }
      const i = this.tasks.findIndex((t) => t.index === a.index);
      const cur = this.tasks[i];
      if (a.kind === "start") {
        assert.ok(!cur || TERMINAL_TASK_STATES.has(cur.state), `slot ${a.index} is free when started`);
        const t = instance(a.index, this.d.version, { state: "pending", healthy: undefined, healthySince: undefined, startedAt: undefined, createdAt: this.now, versionSince: this.now, updatedAt: this.now, ...(a.canary ? { canary: true } : {}) });
        if (i >= 0) this.tasks[i] = t;
        else this.tasks.push(t);
      } else if (a.kind === "stop") {
        assert.ok(cur && cur.desired === "run", `slot ${a.index} is stopped once`);
        this.tasks[i] = cur.state === "pending" ? { ...cur, desired: "stop", state: "killed" } : { ...cur, desired: "stop", updatedAt: this.now };
      } else {
        this.tasks[i] = { ...cur!, version: this.d.version, versionSince: this.now };
      }
    }
  }

  /** One second passes: agents act, then the primary's tick steps the deployment. */
  tick(): DeploymentAction[] {
    this.now += SECOND;
    this.tasks = this.tasks.map((t) => {
      if (t.desired === "stop" && !TERMINAL_TASK_STATES.has(t.state) && this.now - t.updatedAt >= SECOND) return { ...t, state: "killed" };
      if (t.desired === "run" && t.state === "pending") return { ...t, state: "running", startedAt: this.now, updatedAt: this.now };
      if (t.desired === "run" && t.state === "running" && t.healthy === undefined && !this.opts.neverHealthy) return { ...t, healthy: true, healthySince: this.now };
      return t;
    });
    const actions = this.step();
    this.serving.push(this.tasks.filter((t) => t.desired === "run" && t.state === "running" && t.healthy === true).length);
    this.alive.push(this.tasks.filter((t) => t.desired === "run" && !TERMINAL_TASK_STATES.has(t.state)).length);
    return actions;
  }

  runUntilDone(maxTicks = 200): void {
    for (let k = 0; k < maxTicks && ["running"].includes(this.d.status); k++) this.tick();
  }

  versions(): number[] {
    return this.tasks.filter((t) => !TERMINAL_TASK_STATES.has(t.state)).map((t) => t.version ?? 0).sort();
  }
}

const fourOnV0 = () => [0, 1, 2, 3].map((i) => instance(i, 0));

describe("a rolling deployment", () => {
  test("maxSurge 0, maxParallel 1: one instance at a time is drained, stopped and replaced; at most one fewer serves", () => {
    const sim = new Sim(fourOnV0(), deployment(1), policy());
    sim.runUntilDone();
    assert.equal(sim.d.status, "successful");
    assert.deepEqual(sim.versions(), [1, 1, 1, 1]);
    assert.ok(Math.min(...sim.serving) >= 3, `serving never below 3: ${sim.serving.join(",")}`);
    assert.ok(Math.max(...sim.alive) <= 4, "never more than 4 wanted");
  });

  test("the first step stops exactly one old instance and starts nothing (its slot is not free yet)", () => {
    const sim = new Sim(fourOnV0(), deployment(1), policy());
    assert.deepEqual(sim.step(), [{ kind: "stop", index: 3, why: "replaced by version 1" }]);
    assert.deepEqual(sim.step(), [], "stepping again on the same records does nothing more");
  });

  test("maxSurge 1: a new instance starts first; all four keep serving throughout", () => {
    const sim = new Sim(fourOnV0(), deployment(1), policy({ maxSurge: 1 }));
    assert.deepEqual(sim.step(), [{ kind: "start", index: 4, canary: false }]);
    sim.runUntilDone();
    assert.equal(sim.d.status, "successful");
    assert.deepEqual(sim.versions(), [1, 1, 1, 1]);
    assert.ok(Math.min(...sim.serving) >= 4, `serving never below 4: ${sim.serving.join(",")}`);
    assert.ok(Math.max(...sim.alive) <= 5, "never more than 5 wanted");
  });

  test("maxParallel 2 replaces two at a time and finishes sooner", () => {
    const one = new Sim(fourOnV0(), deployment(1), policy());
    one.runUntilDone();
    const two = new Sim(fourOnV0(), deployment(1), policy({ maxParallel: 2 }));
    two.runUntilDone();
    assert.equal(two.d.status, "successful");
    assert.ok(two.now < one.now, `${two.now - T0} < ${one.now - T0}`);
    assert.ok(Math.min(...two.serving) >= 2);
  });

  test("stagger spaces batches out", () => {
    const plain = new Sim(fourOnV0(), deployment(1), policy());
    plain.runUntilDone();
    const staggered = new Sim(fourOnV0(), deployment(1), policy({ staggerMs: 10 * SECOND }));
    staggered.runUntilDone();
    assert.equal(staggered.d.status, "successful");
    assert.ok(staggered.now - T0 >= 30 * SECOND, "four batches at least 10 s apart");
    assert.ok(plain.now < staggered.now);
  });

  test("an instance counts as healthy only after minHealthyTime of passing checks", () => {
    const sim = new Sim([instance(0, 1, { healthySince: T0 - 500, versionSince: T0 - 2000 })], deployment(1), policy(), 1);
    assert.equal(sim.step().length, 0);
    assert.equal(sim.d.status, "running");
    sim.now += 500;
    sim.step();
    assert.equal(sim.d.status, "successful");
  });

  test("changes that need no restart are applied in place at once", () => {
    const sim = new Sim(fourOnV0(), deployment(1), policy(), 4, { inPlace: () => true });
    const actions = sim.step();
    assert.deepEqual(actions.map((a) => a.kind), ["adopt", "adopt", "adopt", "adopt"]);
    sim.step();
    assert.equal(sim.d.status, "successful");
  });

  test("scaling up in place starts the missing instances in free slots", () => {
    const sim = new Sim([instance(0, 0), instance(1, 0, { state: "killed", desired: "stop" })], deployment(1), policy({ maxParallel: 3 }), 3, { inPlace: () => true });
    const actions = sim.step();
    assert.deepEqual(actions, [{ kind: "adopt", index: 0 }, { kind: "start", index: 1, canary: false }, { kind: "start", index: 2, canary: false }]);
    sim.runUntilDone();
    assert.equal(sim.d.status, "successful");
  });

  test("scaling down stops the surplus instances, highest first", () => {
    const sim = new Sim(fourOnV0(), deployment(1), policy(), 2, { inPlace: () => true });
    const actions = sim.step();
    assert.deepEqual(actions.filter((a) => a.kind === "stop").map((a) => a.index), [3, 2]);
    sim.step();
    assert.equal(sim.d.status, "running", "not done while the surplus instances are still draining");
    sim.runUntilDone();
    assert.equal(sim.d.status, "successful");
    assert.deepEqual(sim.versions(), [1, 1]);
  });

  test("an old instance that is not running is replaced at once", () => {
    const sim = new Sim([instance(0, 0, { state: "pending" }), instance(1, 0)], deployment(1), policy(), 2);
    assert.deepEqual(sim.step(), [{ kind: "stop", index: 0, why: "replaced by version 1" }]);
  });

  test("paused: nothing moves until resumed", () => {
    const sim = new Sim(fourOnV0(), deployment(1, { status: "paused" }), policy());
    for (let k = 0; k < 5; k++) assert.deepEqual(sim.tick(), []);
    sim.d = { ...sim.d, status: "running", progressAt: sim.now };
    sim.runUntilDone();
    assert.equal(sim.d.status, "successful");
  });

  test("a finished deployment does nothing", () => {
    for (const status of ["successful", "failed", "reverted", "cancelled"] as const) {
      const r = stepDeployment({ deployment: deployment(1, { status }), policy: policy(), instances: 4, hasChecks: true, tasks: fourOnV0(), inPlace: () => false, now: T0 });
      assert.deepEqual(r.actions, []);
    }
  });
});

describe("a failing deployment", () => {
  test("a new instance not healthy within healthyDeadline fails it; without autoRevert the old instances stay", () => {
    const sim = new Sim(fourOnV0(), deployment(1), policy({ healthyDeadlineMs: 5 * SECOND }), 4, { neverHealthy: true });
    sim.runUntilDone();
    assert.equal(sim.d.status, "failed");
    assert.match(sim.d.description, /not healthy within 5000 ms/);
    assert.deepEqual(sim.reverts, []);
    assert.deepEqual(sim.versions(), [0, 0, 0, 1], "only the one in progress was replaced");
  });

  test("with autoRevert it reverts to the stable version", () => {
    const sim = new Sim(fourOnV0(), deployment(2, { stableVersion: 1 }), policy({ healthyDeadlineMs: 5 * SECOND, autoRevert: true }), 4, { neverHealthy: true });
    sim.runUntilDone();
    assert.equal(sim.d.status, "reverted");
    assert.deepEqual(sim.reverts, [1]);
    assert.match(sim.d.description, /reverting to version 1/);
  });

  test("autoRevert without a stable version just fails", () => {
    const sim = new Sim(fourOnV0(), deployment(1, { stableVersion: undefined }), policy({ healthyDeadlineMs: 5 * SECOND, autoRevert: true }), 4, { neverHealthy: true });
    sim.runUntilDone();
    assert.equal(sim.d.status, "failed");
    assert.deepEqual(sim.reverts, []);
  });

  test("a new instance that failed for good fails the deployment", () => {
    const r = stepDeployment({ deployment: deployment(1), policy: policy(), instances: 2, hasChecks: true, tasks: [instance(0, 0), instance(1, 1, { state: "failed", reason: "exit 1" })], inPlace: () => false, now: T0 });
    assert.equal(r.deployment.status, "failed");
    assert.match(r.deployment.description, /web\/1 failed: exit 1/);
  });

  test("no instance turning healthy for progressDeadline fails it", () => {
    const d = deployment(1, { progressAt: T0 - 61 * SECOND });
    const r = stepDeployment({ deployment: d, policy: policy(), instances: 4, hasChecks: true, tasks: fourOnV0(), inPlace: () => false, now: T0 });
    assert.equal(r.deployment.status, "failed");
    assert.match(r.deployment.description, /no instance turned healthy/);
  });
});

describe("canaries", () => {
  test("start beside the old instances, which all keep serving until promotion", () => {
    const sim = new Sim(fourOnV0(), deployment(1), policy({ canary: 1 }));
    assert.deepEqual(sim.step(), [{ kind: "start", index: 4, canary: true }]);
    for (let k = 0; k < 10; k++) sim.tick();
    assert.equal(sim.d.status, "awaiting-promotion");
    assert.deepEqual(sim.versions(), [0, 0, 0, 0, 1]);
    assert.ok(sim.tasks.filter((t) => (t.version ?? 0) === 0).every((t) => t.desired === "run" && t.state === "running"));
    sim.d = { ...sim.d, status: "running", promoted: true, progressAt: sim.now };
    sim.runUntilDone();
    assert.equal(sim.d.status, "successful");
    assert.deepEqual(sim.versions(), [1, 1, 1, 1]);
    assert.ok(Math.min(...sim.serving) >= 3, "after promotion, maxSurge 0 replaces one at a time");
  });

  test("autoPromote goes on once the canaries are healthy", () => {
    const sim = new Sim(fourOnV0(), deployment(1), policy({ canary: 2, autoPromote: true, maxParallel: 2 }));
    sim.runUntilDone();
    assert.equal(sim.d.status, "successful");
    assert.equal(sim.d.promoted, true);
    assert.deepEqual(sim.versions(), [1, 1, 1, 1]);
  });
});

describe("a primary taking over mid-rollout", () => {
  test("stepping from the records alone at every point repeats nothing and skips nothing", () => {
    const sim = new Sim(fourOnV0(), deployment(1), policy({ maxSurge: 1 }));
    const starts = new Map<number, number>();
    for (let k = 0; k < 200 && sim.d.status === "running"; k++) {
      const actions = sim.tick();
      // A new primary reads the same records: its first step must ask for nothing more.
      assert.deepEqual(stepDeployment(sim.input()).actions.filter((a) => a.kind !== "adopt"), []);
      for (const a of actions) if (a.kind === "start") starts.set(a.index, (starts.get(a.index) ?? 0) + 1);
    }
    assert.equal(sim.d.status, "successful");
    assert.equal([...starts.values()].reduce((a, b) => a + b, 0), 4, "exactly four new instances started");
  });
});
