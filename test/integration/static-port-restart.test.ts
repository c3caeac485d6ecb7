/**
 * A task waiting out its restart backoff keeps its node's static port: no
 * other job may be placed onto that port in the meantime, however often the
 * first one restarts.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestCell, type TestCell } from "../harness/cell.js";
import { never, until } from "../harness/wait.js";

const PORT = 18555;

describe("static ports across restarts in place", () => {
  let c: TestCell;
  before(async () => {
    c = await startTestCell({ managers: 1, agents: 1 });
  });
  after(async () => {
    await c?.close();
  });

  test("a second job never takes the port of a service restarting in place, and stays pending naming the port", async () => {
    const flapping = `name: flapping\ntype: service\nisolation: process\ncommand: [/bin/sh, -c, 'sleep 2; exit 1']\nresources: { cpu: 0.1, memory: 16MiB }\nports: [{ name: http, static: ${PORT} }]\nrestart: { attempts: 1000, delay: 1s, backoff: 1 }\n`;
    const rival = `name: rival\ntype: service\nisolation: process\ncommand: [/bin/sleep, '600']\nresources: { cpu: 0.1, memory: 16MiB }\nports: [{ name: http, static: ${PORT} }]\n`;
    await c.submit(flapping);
    // Submitted once the first has restarted at least once: its backoff windows are what used to leak the port.
    await until("flapping restarted in place", async () => {
      const t = (await c.job("flapping")).taskList[0];
      return t !== undefined && t.attempt >= 2 && t.state === "running" && t;
    }, { timeoutMs: 30_000 });
    await c.submit(rival);

    await never(
      "rival dispatched while flapping holds the port",
      async () => {
        const t = (await c.job("rival")).taskList[0];
        return t !== undefined && (t.state === "dispatched" || t.state === "running") && t;
      },
      12_000,
      { intervalMs: 100 },
    );

    const flap = (await c.job("flapping")).taskList[0]!;
    assert.ok(flap.attempt >= 4, `flapping restarted several times during the window (attempt ${flap.attempt})`);
    assert.ok(flap.events.filter((e) => e.type === "dispatched").every((e) => e.message.endsWith("on agent-1")), "every restart was in place");
    const t = (await c.job("rival")).taskList[0]!;
    assert.equal(t.state, "pending");
    assert.match(t.reason ?? "", new RegExp(`static port ${PORT} in use`));
  });
});
