import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Job, JobSpec, TaskInstance } from "../../src/common/types.js";
import { Admissions, type QueueHeld } from "../../src/manager/primary/admissions.js";
import { SerialQueue } from "../../src/manager/primary/serial-queue.js";
import type { Quota } from "../../src/manager/quota/admission.js";
import { GiB, makeSpec } from "./scheduler-harness.js";

/**
 * Admissions: a submission of a new job name is answered while the queue is
 * busy (a round writing thousands of tasks) and while other submissions are
 * in flight; one for a name that has a job waits for the queue; work on one
 * name runs one at a time; and however admissions overlap, no two spend the
 * same quota remainder.
 */

/** A queue whose first task runs until `release()`: a round in flight. */
function busyQueue() {
  const queue = new SerialQueue(() => false, () => undefined);
  let release!: () => void;
  const round = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
  return { queue, release: () => release(), round };
}

/** A promise with its resolver: a write in flight until `resolve()`. */
function gate(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const settled = async (p: Promise<unknown>) => (await Promise.race([p.then(() => true), new Promise((r) => setImmediate(() => r(false)))])) as boolean;

/** A namespace with room for 4 batch cores. */
const QUOTA: Quota = { prod: { cpu: 0, memory: 0 }, batch: { cpu: 4, memory: 64 * GiB } };

/** The primary's copy of the jobs, as quota usage reads it: jobs with no tasks yet hold their reservation. */
function jobStore() {
  const jobs = new Map<string, Job>();
  return {
    jobs,
    tasksOf: (): readonly TaskInstance[] => [],
    add(spec: JobSpec) {
      jobs.set(`default/${spec.name}`, { id: `default/${spec.name}`, spec, source: "", status: "pending", desired: "run", submittedAt: 0, updatedAt: 0 });
    },
  };
}

const batch = (name: string, cpu: number, instances = 1) => makeSpec(name, { type: "batch", cpu, instances, memory: GiB });

describe("admissions", () => {
  test("a submission of a new name is answered while a round holds the queue", async () => {
    const { queue, release, round } = busyQueue();
    const jobs = new Set<string>();
    const admissions = new Admissions(queue, (id) => jobs.has(id), () => false, () => undefined);
    const held: QueueHeld[] = [];
    const answer = await admissions.submit("default/new", async (h) => {
      held.push(h);
      jobs.add("default/new");
      return "created";
    });
    assert.equal(answer, "created");
    assert.deepEqual(held, ["name only"]);
    release();
    await round;
  });

  test("a submission for a name that has a job waits for the queue and runs holding it", async () => {
    const { queue, release, round } = busyQueue();
    const admissions = new Admissions(queue, (id) => id === "default/live", () => false, () => undefined);
    const held: QueueHeld[] = [];
    const answer = admissions.submit("default/live", async (h) => {
      held.push(h);
      return "new version";
    });
    assert.equal(await settled(answer), false, "it waits for the round");
    release();
    await round;
    assert.equal(await answer, "new version");
    assert.deepEqual(held, ["queue held"]);
  });

  test("a name taken while the submission waited for it goes through the queue", async () => {
    const queue = new SerialQueue(() => false, () => undefined);
    const jobs = new Set<string>();
    const admissions = new Admissions(queue, (id) => jobs.has(id), () => false, () => undefined);
    const held: QueueHeld[] = [];
    const first = admissions.submit("default/web", async (h) => {
      held.push(h);
      jobs.add("default/web");
    });
    const second = admissions.submit("default/web", async (h) => {
      held.push(h);
    });
    await Promise.all([first, second]);
    assert.deepEqual(held, ["name only", "queue held"]);
  });

  test("submissions of different names are in flight together; work on one name runs one at a time", async () => {
    const queue = new SerialQueue(() => false, () => undefined);
    const admissions = new Admissions(queue, () => false, () => false, () => undefined);
    const writes = { a: gate(), b: gate() };
    const log: string[] = [];
    const a = admissions.submit("default/a", async () => {
      log.push("a begins");
      await writes.a.promise;
      log.push("a ends");
    });
    const b = admissions.submit("default/b", async () => {
      log.push("b begins");
      await writes.b.promise;
      log.push("b ends");
    });
    const scaleA = queue.run(() => admissions.fromQueue("default/a", async () => void log.push("scale a")));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ["a begins", "b begins"], "b does not wait for a's write");
    writes.b.resolve();
    await b;
    assert.equal(await settled(scaleA), false, "work on a waits for a's submission");
    writes.a.resolve();
    await Promise.all([a, scaleA]);
    assert.deepEqual(log, ["a begins", "b begins", "b ends", "a ends", "scale a"]);
  });

  test("two submissions in flight together never spend the same quota remainder", async () => {
    const queue = new SerialQueue(() => false, () => undefined);
    const store = jobStore();
    const admissions = new Admissions(queue, (id) => store.jobs.has(id), () => false, () => undefined);
    const firstWrite = gate();
    // Each asks 3 of the 4 cores: whichever is admitted first, the other is refused.
    const first = admissions.submit("default/first", async () => {
      const release = admissions.admit("default/first", batch("first", 3), QUOTA, store);
      await firstWrite.promise;
      store.add(batch("first", 3));
      release();
    });
    await new Promise((r) => setImmediate(r));
    const second = admissions.submit("default/second", async () => {
      admissions.admit("default/second", batch("second", 3), QUOTA, store);
      store.add(batch("second", 3));
    });
    await assert.rejects(second, (e: Error & { status?: number }) => e.status === 403 && /batch cpu quota 4 exceeded: .*3 in use, 1 left/.test(e.message));
    firstWrite.resolve();
    await first;
    assert.deepEqual(admissions.usage(store, "default").batch, { cpu: 3, memory: GiB, instances: 1 }, "the stored job counts once");
  });

  test("a reservation is given back when its write fails", async () => {
    const queue = new SerialQueue(() => false, () => undefined);
    const store = jobStore();
    const admissions = new Admissions(queue, (id) => store.jobs.has(id), () => false, () => undefined);
    const failed = admissions.submit("default/lost", async () => {
      const release = admissions.admit("default/lost", batch("lost", 3), QUOTA, store);
      try {
        throw new Error("connection lost");
      } finally {
        release();
      }
    });
    await assert.rejects(failed, /connection lost/);
    assert.deepEqual(admissions.usage(store, "default").batch, { cpu: 0, memory: 0, instances: 0 });
    await admissions.submit("default/retry", async () => admissions.admit("default/retry", batch("retry", 3), QUOTA, store));
  });

  test("a new version's reservation replaces the job's stored one while it is written", async () => {
    const queue = new SerialQueue(() => false, () => undefined);
    const store = jobStore();
    store.add(batch("svc", 1, 2));
    const admissions = new Admissions(queue, (id) => store.jobs.has(id), () => false, () => undefined);
    const write = gate();
    // 2 × 1 core stored; the new version asks 4 × 1: it fits only because it replaces the 2.
    const grow = queue.run(() =>
      admissions.fromQueue("default/svc", async () => {
        const release = admissions.admit("default/svc", batch("svc", 1, 4), QUOTA, store);
        await write.promise;
        store.add(batch("svc", 1, 4));
        release();
      }),
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(admissions.usage(store, "default").batch.cpu, 4, "the new version counts, the stored one not");
    await assert.rejects(admissions.submit("default/more", async () => admissions.admit("default/more", batch("more", 0.5), QUOTA, store)), { status: 403 });
    write.resolve();
    await grow;
    assert.equal(admissions.usage(store, "default").batch.cpu, 4);
  });

  test("a reservation admitted holding no name (an automatic revert inside a round) counts until it is released", () => {
    const queue = new SerialQueue(() => false, () => undefined);
    const store = jobStore();
    const admissions = new Admissions(queue, (id) => store.jobs.has(id), () => false, () => undefined);
    const release = admissions.admit("default/reverted", batch("reverted", 2), QUOTA, store);
    assert.equal(admissions.usage(store, "default").batch.cpu, 2);
    release();
    assert.equal(admissions.usage(store, "default").batch.cpu, 0);
  });

  test("a fenced primary admits nothing", async () => {
    const queue = new SerialQueue(() => true, () => undefined);
    const admissions = new Admissions(queue, () => false, () => true, () => undefined);
    let ran = false;
    await assert.rejects(admissions.submit("default/a", async () => void (ran = true)), { code: "not_primary" });
    assert.equal(ran, false);
  });
});
