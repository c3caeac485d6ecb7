/**
 * The agent's half of disconnected nodes, specified: when an agent cut off
 * from ZooKeeper and every manager stops its tasks. Time is passed in.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { cutOffMarginMs, isCutOff, tasksToStopWhenCutOff } from "../../agent/cut-off.js";

const GRACE = 30_000;
const T0 = 1_000_000;

describe("an agent cut off", () => {
  test("stops its tasks the margin before the primary's grace ends", () => {
    assert.equal(cutOffMarginMs(GRACE), 6000);
    const contacts = { zookeeperAt: T0, managerAt: T0 };
    assert.equal(isCutOff(contacts, GRACE, T0 + 23_999), false);
    assert.equal(isCutOff(contacts, GRACE, T0 + 24_000), true);
  });

  test("keeps them while it reaches a manager, without ZooKeeper", () => {
    assert.equal(isCutOff({ zookeeperAt: T0, managerAt: T0 + 50_000 }, GRACE, T0 + 60_000), false);
  });

  test("keeps them while it reaches ZooKeeper, without a manager", () => {
    assert.equal(isCutOff({ zookeeperAt: T0 + 50_000, managerAt: T0 }, GRACE, T0 + 60_000), false);
  });

  test("the margin is at most 10 s", () => {
    assert.equal(cutOffMarginMs(600_000), 10_000);
  });

  test("stops live tasks not already stopping, but those of jobs that keep running", () => {
    const tasks = [
      { id: "a", live: true, stopping: false, keepRunning: false },
      { id: "b", live: true, stopping: false, keepRunning: true },
      { id: "c", live: false, stopping: false, keepRunning: false },
      { id: "d", live: true, stopping: true, keepRunning: false },
    ];
    assert.deepEqual(tasksToStopWhenCutOff(tasks).map((t) => t.id), ["a"]);
  });
});
