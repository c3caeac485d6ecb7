import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { invalidPathReason } from "../../src/coord/zk.js";

// The C client refuses these without ever calling back, so ZkSession must refuse them first.
describe("ZooKeeper paths are checked before they reach the client", () => {
  test("valid paths pass", () => {
    for (const p of ["/", "/torca", "/torca/jobs/web%2F0", "/a b/c-d_e.f", "/torca/jobs/ns:web/tasks/12"]) assert.equal(invalidPathReason(p), undefined, p);
  });

  test("each rule of ZooKeeper's validatePath is enforced with a reason", () => {
    const cases: [string, RegExp][] = [
      ["torca", /start with/],
      ["", /start with/],
      ["/torca/", /end with/],
      ["/torca//jobs", /empty segment/],
      ["/torca/../etc", /relative segment/],
      ["/torca/./x", /relative segment/],
      ["/torca/a\u0000b", /control/],
      ["/torca/a\u0007b", /control/],
      ["/torca/\ud83d\ude00", /reserved/],
    ];
    for (const [p, why] of cases) assert.match(invalidPathReason(p) ?? "", why, JSON.stringify(p));
  });
});
