import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type BrowserContext } from "playwright-core";
import { LocalCell } from "../../src/cell/local-cell.js";

/** A workflow's status page in headless Chromium against a real cell: the graph follows the workflow live. */

const ARTIFACTS = resolve(new URL("../../../test-artifacts", import.meta.url).pathname);
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

declare global {
  interface Window {
    __loadId?: string;
    __states?: string[];
  }
}

let dir = "";
let cell: LocalCell | undefined;
let browser: BrowserContext | undefined;

const job = (script: string) => `{ type: batch, isolation: process, resources: { cpu: 0.1, memory: 32MiB }, command: ["/bin/sh", "-c", ${JSON.stringify(script)}] }`;

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), "torca-wf-page-"));
  cell = new LocalCell({ dir: join(dir, "cell"), managers: 1, agents: 1, agentDriver: "process", sessionTimeout: "2s", tickTimeMs: 1000, stopTasksOnExit: true });
  await cell.start();
  await cell.waitForPrimary(60_000);
  await cell.waitForNodes(1, 60_000);
  browser = await chromium.launchPersistentContext(join(dir, "chromium-profile"), { executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await cell?.stop().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the workflow page in a browser", () => {
  it("is linked from the overview and redraws the graph as nodes run, without a reload", async () => {
    const c = cell!;
    const base = (await c.waitForPrimary(30_000)).url;
    const source = `workflow: shown\nnodes:\n  - { name: first, job: ${job("sleep 8")} }\n  - { name: second, after: [first], job: ${job("sleep 3")} }\n  - { name: never, after: [first], when: failed, job: ${job("true")} }\n`;
    const res = await fetch(`${base}/v1/workflows`, { method: "POST", headers: { authorization: `Bearer ${c.token}`, "content-type": "application/json" }, body: JSON.stringify({ source }) });
    assert.equal(res.status, 201, await res.text());

    const page = await browser!.newPage();
    page.setDefaultTimeout(60_000);
    await page.goto(`${base}/?token=${encodeURIComponent(c.token)}`);
    await page.click('header a[href="/workflows"]');
    await page.click('a[href="/workflows/shown"]');
    await page.waitForFunction(() => document.getElementById("live")?.textContent === "live", undefined, { timeout: 15_000 });
    const loadId = await page.evaluate(() => window.__loadId);
    assert.ok(loadId, "the client script ran");
    assert.equal(await page.locator("svg#workflow-graph g.wf-node").count(), 3);
    assert.equal(await page.locator("svg#workflow-graph path.edge").count(), 2);
    // Every state the second node is drawn in, as the page redraws it.
    await page.evaluate(() => {
      const states: string[] = (window.__states = []);
      const note = () => {
        const s = document.querySelector('svg#workflow-graph g[data-node="second"]')?.getAttribute("data-state") ?? "";
        if (s && states[states.length - 1] !== s) states.push(s);
      };
      note();
      new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    await page.waitForFunction(() => window.__states?.includes("succeeded"), undefined, { timeout: 60_000 });
    const states = await page.evaluate(() => window.__states ?? []);
    assert.deepEqual(states.filter((s, i) => states.indexOf(s) === i), ["waiting", "running", "succeeded"], `states drawn: ${states.join(" → ")}`);
    await page.waitForFunction(() => document.getElementById("workflow-live")?.getAttribute("data-state") === "succeeded", undefined, { timeout: 30_000 });
    assert.equal(await page.locator('svg#workflow-graph g[data-node="never"]').getAttribute("data-state"), "skipped");
    assert.equal(await page.evaluate(() => window.__loadId), loadId, "the page was never reloaded");
    await page.screenshot({ path: join(ARTIFACTS, "pages-workflow.png"), fullPage: true });
    await page.close();
  });
});
