/**
 * Disconnected nodes, specified: when a node without its ZooKeeper node is
 * declared lost. No ZooKeeper, no clock: time is passed in.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DisconnectTracker, type DisconnectRules } from "../../src/manager/primary/disconnect.js";

const RULES: DisconnectRules = { graceMs: 30_000, minNodes: 3, massLossShare: 0.5, massLossWindowMs: 60_000 };
const T0 = 1_000_000;

function tracker(rules: Partial<DisconnectRules> = {}): DisconnectTracker {
  return new DisconnectTracker({ ...RULES, ...rules });
}

describe("a disconnected node", () => {
  test("is not lost within the grace", () => {
    const t = tracker();
    t.disconnected("n1", T0);
    assert.deepEqual(t.decide(T0 + 29_999, 10, true), { lose: [] });
  });

  test("is lost once quiet for the grace", () => {
    const t = tracker();
    t.disconnected("n1", T0);
    assert.deepEqual(t.decide(T0 + 30_000, 10, true), { lose: ["n1"] });
  });

  test("keeps the time it was first seen gone", () => {
    const t = tracker();
    t.disconnected("n1", T0);
    t.disconnected("n1", T0 + 20_000);
    assert.deepEqual(t.decide(T0 + 30_000, 10, true).lose, ["n1"]);
  });

  test("is not lost when its ZooKeeper node came back", () => {
    const t = tracker();
    t.disconnected("n1", T0);
    t.connected("n1");
    assert.deepEqual(t.decide(T0 + 60_000, 10, true), { lose: [] });
    assert.equal(t.isDisconnected("n1"), false);
  });

  test("a report arriving meanwhile starts its grace again", () => {
    const t = tracker();
    t.disconnected("n1", T0);
    t.reported("n1", T0 + 25_000);
    assert.deepEqual(t.decide(T0 + 54_999, 10, true), { lose: [] });
    assert.deepEqual(t.decide(T0 + 55_000, 10, true), { lose: ["n1"] });
  });

  test("a report from a connected node changes nothing", () => {
    const t = tracker();
    t.reported("n1", T0);
    assert.equal(t.isDisconnected("n1"), false);
  });
});

describe("holding migrations", () => {
  test("nothing is lost while ZooKeeper cannot be written, and the wait is said", () => {
    const t = tracker();
    t.disconnected("n1", T0);
    assert.deepEqual(t.decide(T0 + 40_000, 10, false), { lose: [], held: { reason: "zookeeper-unwritable", nodes: ["n1"] } });
    assert.deepEqual(t.decide(T0 + 41_000, 10, true), { lose: ["n1"] });
  });

  test("no hold is reported while nothing is past its grace", () => {
    const t = tracker();
    t.disconnected("n1", T0);
    assert.deepEqual(t.decide(T0 + 1_000, 10, false), { lose: [] });
  });

  test("more than half of a cell lost within the window is held past the grace", () => {
    const t = tracker();
    for (const id of ["n1", "n2", "n3"]) t.disconnected(id, T0);
    assert.deepEqual(t.decide(T0 + 1_000, 4, true), { lose: [] });
    assert.deepEqual(t.decide(T0 + 600_000, 4, true), { lose: [], held: { reason: "mass-loss", nodes: ["n1", "n2", "n3"] } });
  });

  test("a node disconnecting within the window of a mass loss is held too", () => {
    const t = tracker();
    for (const id of ["n1", "n2", "n3"]) t.disconnected(id, T0);
    t.decide(T0, 4, true);
    t.disconnected("n4", T0 + 10_000);
    t.decide(T0 + 10_000, 4, true);
    assert.deepEqual(t.decide(T0 + 600_000, 4, true).held?.nodes, ["n1", "n2", "n3", "n4"]);
  });

  test("exactly the share is no mass loss", () => {
    const t = tracker();
    for (const id of ["n1", "n2"]) t.disconnected(id, T0);
    assert.deepEqual(t.decide(T0 + 30_000, 4, true), { lose: ["n1", "n2"] });
  });

  test("losses spread beyond the window are no mass loss", () => {
    const t = tracker({ graceMs: 300_000 });
    t.disconnected("n1", T0);
    t.disconnected("n2", T0 + 61_000);
    t.disconnected("n3", T0 + 122_000);
    assert.deepEqual(t.decide(T0 + 122_000, 4, true), { lose: [] });
    assert.deepEqual(t.decide(T0 + 300_000, 4, true), { lose: ["n1"] });
  });

  test("a cell smaller than the minimum never holds", () => {
    const t = tracker();
    for (const id of ["n1", "n2"]) t.disconnected(id, T0);
    assert.deepEqual(t.decide(T0 + 30_000, 2, true), { lose: ["n1", "n2"] });
  });

  test("held nodes that come back are no longer held", () => {
    const t = tracker();
    for (const id of ["n1", "n2", "n3"]) t.disconnected(id, T0);
    t.decide(T0, 4, true);
    for (const id of ["n1", "n2", "n3"]) t.connected(id);
    assert.deepEqual(t.decide(T0 + 600_000, 4, true), { lose: [] });
  });
});

describe("confirm-lost", () => {
  test("a confirmed node is lost at once, within its grace", () => {
    const t = tracker();
    t.disconnected("n1", T0);
    t.confirm("n1", T0 + 1_000);
    assert.deepEqual(t.decide(T0 + 1_000, 10, true), { lose: ["n1"] });
  });

  test("a confirmed node is lost during a mass loss, the others stay held", () => {
    const t = tracker();
    for (const id of ["n1", "n2", "n3"]) t.disconnected(id, T0);
    t.decide(T0, 4, true);
    t.confirm("n2", T0 + 40_000);
    assert.deepEqual(t.decide(T0 + 40_000, 4, true), { lose: ["n2"], held: { reason: "mass-loss", nodes: ["n1", "n3"] } });
  });

  test("a confirmed node waits while ZooKeeper cannot be written", () => {
    const t = tracker();
    t.confirm("n1", T0);
    assert.deepEqual(t.decide(T0, 10, false), { lose: [], held: { reason: "zookeeper-unwritable", nodes: ["n1"] } });
  });
});
