import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { LocalCell } from "../../src/cell/local-cell.js";
import { until } from "../harness/wait.js";

/**
 * The status pages in real headless Chromium against a real cell (ZooKeeper,
 * two managers, one agent with the process driver). Every wait is bounded.
 */

const ARTIFACTS = resolve(new URL("../../../test-artifacts", import.meta.url).pathname);
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

declare global {
  interface Window {
    __loadId?: string;
    __pwned?: number;
    __marker?: number;
    __seen?: string[];
  }
}

let dir = "";
let cell: LocalCell | undefined;
let browser: BrowserContext | undefined;
let primaryUrl = "";
let primaryId = "";
let backupUrl = "";

function theCell(): LocalCell {
  assert.ok(cell, "cell started");
  return cell;
}

async function submit(yaml: string): Promise<string> {
  const res = await fetch(`${primaryUrl}/v1/jobs`, { method: "POST", headers: { authorization: `Bearer ${theCell().token}`, "content-type": "application/yaml" }, body: yaml });
  const body = (await res.json()) as { id?: string; error?: { message: string } };
  assert.equal(res.status, 201, `submit: ${JSON.stringify(body)}`);
  return body.id!;
}

async function apiGet(path: string): Promise<Response> {
  return fetch(`${primaryUrl}${path}`, { headers: { authorization: `Bearer ${theCell().token}` } });
}

/** Waits until the task exists (submission creates tasks right after the job). */
function waitForTask(taskId: string): Promise<boolean> {
  return until(`task ${taskId} to appear`, async () => (await apiGet(`/v1/tasks/${encodeURIComponent(taskId)}`)).status === 200, { timeoutMs: 15_000, intervalMs: 100 });
}

async function openPage(url: string): Promise<Page> {
  assert.ok(browser, "browser started");
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  await page.goto(url);
  return page;
}

/** Opens a page of a manager with ?token= (sets the session cookie, then redirects). */
async function openAuthed(base: string, path: string): Promise<Page> {
  const sep = path.includes("?") ? "&" : "?";
  return openPage(`${base}${path}${sep}token=${encodeURIComponent(theCell().token)}`);
}

async function waitLive(page: Page): Promise<void> {
  await page.waitForFunction(() => document.getElementById("live")?.textContent === "live", undefined, { timeout: 15_000 });
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `pages-${name}.png`), fullPage: true });
}

function batchJob(name: string, script: string, extra = ""): string {
  return `name: ${name}
type: batch
isolation: process
command: ["/bin/sh", "-c", ${JSON.stringify(script)}]
resources: { cpu: 0.1, memory: 32MiB, disk: 16MiB }
${extra}`;
}

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), "torca-pages-"));
  cell = new LocalCell({ dir: join(dir, "cell"), managers: 2, agents: 1, agentDriver: "process", sessionTimeout: "2s", tickTimeMs: 1000, stopTasksOnExit: true });
  await cell.start();
  const leader = await cell.waitForPrimary(60_000);
  await cell.waitForNodes(1, 60_000);
  primaryUrl = leader.url;
  primaryId = leader.id;
  backupUrl = cell.managerUrls.find((u) => u !== primaryUrl)!;
  browser = await chromium.launchPersistentContext(join(dir, "chromium-profile"), { executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await cell?.stop().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("status pages in a browser", () => {
  it("overview follows a job from pending to running to complete without a reload", async () => {
    const page = await openAuthed(primaryUrl, "/");
    await waitLive(page);
    const loadId = await page.evaluate(() => window.__loadId);
    assert.ok(loadId, "the client script ran");
    const completeBefore = Number(await page.locator('[data-count="complete"]').textContent());
    // Record every status the row shows: one SSE event per task, so the observer sees each.
    await page.evaluate(() => {
      window.__marker = 1;
      window.__seen = [];
      const seen = window.__seen;
      new MutationObserver(() => {
        const cell = document.querySelector('tr[data-job="sleeper"] [data-f="status"]');
        const s = cell?.textContent ?? "";
        if (s && seen[seen.length - 1] !== s) seen.push(s);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await submit(batchJob("sleeper", "sleep 2"));
    await page.waitForFunction(() => window.__seen?.includes("complete"), undefined, { timeout: 60_000 });
    const seen = await page.evaluate(() => window.__seen ?? []);
    assert.equal(seen[0], "pending", `statuses seen: ${seen.join(" → ")}`);
    assert.ok(seen.includes("running"), `statuses seen: ${seen.join(" → ")}`);
    assert.equal(seen[seen.length - 1], "complete");
    assert.match((await page.locator('tr[data-job="sleeper"] [data-f="tasks"]').textContent()) ?? "", /completed 1/);
    assert.equal(Number(await page.locator('[data-count="complete"]').textContent()), completeBefore + 1);
    assert.deepEqual(await page.evaluate(() => [window.__loadId, window.__marker]), [loadId, 1], "the page was never reloaded");
    await shot(page, "overview");
    await page.close();
  });

  it("the task page tails the log as lines are written", async () => {
    await submit(batchJob("ticker", "for i in $(seq 1 20); do echo tick-$i; sleep 0.3; done"));
    await waitForTask("ticker/0");
    const page = await openAuthed(primaryUrl, "/tasks/ticker/0");
    const loadId = await page.evaluate(() => window.__loadId);
    await page.waitForFunction(() => /tick-3\n/.test(document.getElementById("log")?.textContent ?? ""), undefined, { timeout: 30_000 });
    const early = (await page.locator("#log").textContent()) ?? "";
    assert.ok(!early.includes("tick-20"), `the tail shows lines while they are written, not only at the end: ${JSON.stringify(early)}`);
    await page.waitForFunction(() => /tick-20\n/.test(document.getElementById("log")?.textContent ?? ""), undefined, { timeout: 30_000 });
    const all = (await page.locator("#log").textContent()) ?? "";
    const last = all.slice(all.lastIndexOf("tick-1\n"));
    assert.deepEqual(last.trim().split("\n"), Array.from({ length: 20 }, (_, i) => `tick-${i + 1}`), "the last attempt's lines, in order, once each");
    await page.waitForFunction(() => document.querySelector('[data-f="state"]')?.textContent === "completed", undefined, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.__loadId), loadId, "the page was never reloaded");
    await shot(page, "task");
    await page.close();
  });

  it("renders markup in commands, env values and logs as inert text", async () => {
    const payload = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>";
    const envPayload = "<img src=x onerror=window.__pwned=3>";
    await submit(batchJob("xss-check", `echo '${payload}'`, `env: { NOTE: ${JSON.stringify(envPayload)} }\n`));
    await waitForTask("xss-check/0");

    const job = await openAuthed(primaryUrl, "/jobs/xss-check");
    await waitLive(job);
    assert.ok(((await job.locator("code.command").textContent()) ?? "").includes(payload), "command shown literally on the job page");
    assert.ok(((await job.locator("dd.env").textContent()) ?? "").includes(envPayload), "env shown literally on the job page");
    assert.ok(((await job.locator("pre").last().textContent()) ?? "").includes(payload), "the submitted source shown literally");
    assert.equal(await job.locator("main img").count(), 0);
    assert.equal(await job.evaluate(() => window.__pwned), undefined);
    await job.close();

    const task = await openAuthed(primaryUrl, "/tasks/xss-check/0");
    await task.waitForFunction((p) => (document.getElementById("log")?.textContent ?? "").includes(p), payload, { timeout: 30_000 });
    assert.ok(((await task.locator("code.command").textContent()) ?? "").includes(payload), "command shown literally on the task page");
    assert.ok(((await task.locator("dd.env").textContent()) ?? "").includes(envPayload), "env shown literally on the task page");
    assert.equal(await task.locator("main img").count(), 0);
    assert.equal(await task.locator("main script:not([type='application/json'])").count(), 0);
    assert.equal(await task.evaluate(() => window.__pwned), undefined);
    await shot(task, "xss");
    await task.close();
  });

  it("a backup manager's pages name the primary with a link", async () => {
    assert.ok(backupUrl, "the cell has a backup");
    const page = await openAuthed(backupUrl, "/jobs");
    const banner = page.locator(".banner");
    assert.match((await banner.textContent()) ?? "", new RegExp(`backup.*The primary is ${primaryId}`));
    assert.equal(await banner.locator("a").getAttribute("href"), `${primaryUrl}/jobs`);
    // The backup serves the same state: the jobs submitted to the primary are listed.
    await page.waitForSelector('tr[data-job="sleeper"]', { timeout: 15_000 });
    await shot(page, "backup");
    await page.close();
  });

  it("without a session shows a login form; the cookie is HttpOnly and never authorizes writes", async () => {
    assert.ok(browser);
    await browser.clearCookies();
    const page = await openPage(`${primaryUrl}/jobs?status=complete`);
    await page.locator("input[name=token]").fill("not-the-token-0123456789");
    await page.locator("form.login button").click();
    await page.waitForSelector(".error");
    assert.match((await page.locator(".error").textContent()) ?? "", /not valid/);
    await page.locator("input[name=token]").fill(theCell().token);
    await page.locator("form.login button").click();
    await page.waitForSelector("h1:has-text('Jobs')");
    assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, "/jobs?status=complete");
    await page.waitForSelector('tr[data-job="sleeper"]');
    assert.equal(await page.evaluate(() => document.cookie), "", "the session cookie is not readable by scripts");
    const statuses = await page.evaluate(async () => {
      const read = await fetch("/v1/jobs");
      const write = await fetch("/v1/jobs", { method: "POST", body: "name: sneaky\ncommand: [\"true\"]\n" });
      return [read.status, write.status];
    });
    assert.deepEqual(statuses, [200, 401]);
    await page.close();
  });

  it("fits a phone screen and shows the optional lists", async () => {
    const page = await openAuthed(primaryUrl, "/jobs/ticker");
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the page does not scroll sideways at phone width (overflow ${overflow}px)`);
    await shot(page, "job-phone");
    for (const [path, unavailable] of [["/names", "naming not available"], ["/packages", "packages not available"], ["/alerts", "alerts not available"]] as const) {
      await page.goto(`${primaryUrl}${path}`);
      // Either the route exists (a table or its empty message) or the page says it does not.
      await page.waitForFunction(() => !document.querySelector("#remote p.muted")?.textContent?.includes("loading"), undefined, { timeout: 15_000 });
      const text = (await page.locator("#remote").textContent()) ?? "";
      const api = await apiGet(`/v1${path}`);
      if (api.status === 404) assert.equal(text, unavailable);
      else assert.ok((await page.locator("#remote table").count()) === 1 || text === (await page.locator("#remote").getAttribute("data-empty")), `${path}: ${text}`);
    }
    await page.close();
  });
});
