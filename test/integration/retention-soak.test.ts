import { test } from "node:test";
import assert from "node:assert/strict";
import { runSoak, soakFailures } from "../soak/retention-soak.js";

// The short soaks inside `npm test` (the 20,000-task ones are `npm run test:soak`); 74 s each here at a load of 27.
for (const engine of ["embedded", "postgres"] as const) {
  test(`2,000 short batch tasks through a cell with a 2 s retention, archived to the ${engine} store: ZooKeeper back to its size, each task archived once, usage adding up to the agents' readings`, async () => {
    const f = await runSoak(2000, { engine, log: () => undefined });
    assert.deepEqual(soakFailures(f), []);
  });
}
