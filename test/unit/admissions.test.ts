import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Admissions, SerialQueue, type QueueHeld } from "../../src/manager/primary/serial-queue.js";

/**
 * The admissions lane: a submission of a new job name is answered while the
 * queue is busy (a round writing thousands of tasks); one for a name that has
 * a job waits for the queue; submissions never interleave with each other.
 */

/** A queue whose first task runs until `release()`: a round in flight. */
function busyQueue() {
  const queue = new SerialQueue(() => false, () => undefined);
  let release!: () => void;
  const round = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
  return { queue, release: () => release(), round };
}

const settled = async (p: Promise<unknown>) => (await Promise.race([p.then(() => true), new Promise((r) => setImmediate(() => r(false)))])) as boolean;

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
    assert.deepEqual(held, ["lane only"]);
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

  test("a name taken while the submission waited for the lane goes through the queue", async () => {
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
    assert.deepEqual(held, ["lane only", "queue held"]);
  });

  test("submissions and work admitted from the queue never interleave", async () => {
    const queue = new SerialQueue(() => false, () => undefined);
    const admissions = new Admissions(queue, () => false, () => false, () => undefined);
    const log: string[] = [];
    const step = (name: string) => async () => {
      log.push(`${name} begins`);
      await new Promise((r) => setImmediate(r));
      log.push(`${name} ends`);
    };
    await Promise.all([admissions.submit("default/a", step("a")), queue.run(() => admissions.fromQueue(step("scale"))), admissions.submit("default/b", step("b"))]);
    assert.equal(log.length, 6);
    for (let i = 0; i < log.length; i += 2) assert.equal(log[i + 1], log[i]!.replace("begins", "ends"), `one at a time: ${log.join(", ")}`);
    assert.deepEqual(log.slice(0, 2), ["a begins", "a ends"], "the first submission first");
  });

  test("a fenced primary admits nothing", async () => {
    const queue = new SerialQueue(() => true, () => undefined);
    const admissions = new Admissions(queue, () => false, () => true, () => undefined);
    let ran = false;
    await assert.rejects(admissions.submit("default/a", async () => void (ran = true)), { code: "not_primary" });
    assert.equal(ran, false);
  });
});
