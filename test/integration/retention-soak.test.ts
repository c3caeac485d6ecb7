import { test } from "node:test";
import assert from "node:assert/strict";
import { runSoak, soakFailures } from "../soak/retention-soak.js";

// The short soak inside `npm test` (the 20,000-task one is `npm run test:soak`); 74 s here at a load of 27.
test("2,000 short batch tasks through a cell with a 2 s retention: ZooKeeper back to its size, each task archived once, usage adding up to the agents' readings", async () => {
  const f = await runSoak(2000, { log: () => undefined });
  assert.deepEqual(soakFailures(f), []);
});
