import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { LocalCell } from "../../src/cell/local-cell.js";
import { csrfToken } from "../../src/http/csrf.js";
import { until } from "../harness/wait.js";

/**
 * Usage graphs, the windowed job page and the admin actions, in real headless
 * Chromium against a real cell (ZooKeeper, one manager, one agent with the
 * process driver, reports every second). A second, cluster-wide read-only
 * token ("viewer") comes from the config. Every wait is bounded.
 */

const ARTIFACTS = resolve(new URL("../../../test-artifacts", import.meta.url).pathname);
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const VIEWER_TOKEN = "viewer-token-0123456789abcdef";

declare global {
  interface Window {
    __loadId?: string;
  }
}

let dir = "";
let cell: LocalCell | undefined;
let browser: BrowserContext | undefined;
let url = "";
let nodeId = "";

function theCell(): LocalCell {
  assert.ok(cell, "cell started");
  return cell;
}

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${theCell().token}`, ...(init.headers ?? {}) } });
}

async function submit(yaml: string): Promise<string> {
  const res = await api("/v1/jobs", { method: "POST", headers: { "content-type": "application/yaml" }, body: yaml });
  const body = (await res.json()) as { id?: string; error?: { message: string } };
  assert.equal(res.status, 201, `submit: ${JSON.stringify(body)}`);
  return body.id!;
}

async function taskState(id: string): Promise<string | undefined> {
  const res = await api(`/v1/tasks/${encodeURIComponent(id)}`);
  return res.status === 200 ? ((await res.json()) as { state: string }).state : undefined;
}

async function nodeState(): Promise<string | undefined> {
  const r = (await (await api("/v1/nodes")).json()) as { nodes: { id: string; state: string }[] };
  return r.nodes.find((n) => n.id === nodeId)?.state;
}

/** Logs the browser in with `token` (the ?token= redirect sets the session cookie) and opens `path`. */
async function openAs(token: string, path: string): Promise<Page> {
  assert.ok(browser, "browser started");
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  const sep = path.includes("?") ? "&" : "?";
  await page.goto(`${url}${path}${sep}token=${encodeURIComponent(token)}`);
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `pages-${name}.png`), fullPage: true });
}

/** Samples the chart with this id shows now. */
function samples(page: Page, id: string): Promise<number> {
  return page.evaluate((i) => Number(document.getElementById(i)?.getAttribute("data-samples") ?? -1), id);
}

function job(name: string, script: string, extra = ""): string {
  return `name: ${name}
type: batch
isolation: process
command: ["/bin/sh", "-c", ${JSON.stringify(script)}]
resources: { cpu: 0.1, memory: 64MiB, disk: 16MiB }
${extra}`;
}

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), "torca-pages-actions-"));
  cell = new LocalCell({
    dir: join(dir, "cell"),
    managers: 1,
    agents: 1,
    agentDriver: "process",
    sessionTimeout: "2s",
    tickTimeMs: 1000,
    reportInterval: "1s",
    stopTasksOnExit: true,
    env: { TORCA_CLUSTER_TOKENS: `[{name: viewer, role: read, token: ${VIEWER_TOKEN}}]` },
  });
  await cell.start();
  url = (await cell.waitForPrimary(60_000)).url;
  await cell.waitForNodes(1, 60_000);
  nodeId = ((await (await api("/v1/nodes")).json()) as { nodes: { id: string }[] }).nodes[0]!.id;
  browser = await chromium.launchPersistentContext(join(dir, "chromium-profile"), { executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await cell?.stop().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("usage graphs, the windowed job page and actions in a browser", () => {
  it("the task and node pages draw usage over time and keep drawing it without a reload; a task restarts from its page", async () => {
    // A little CPU and about 8 MiB held in a shell variable, until killed.
    await submit(job("burner", "x=$(head -c 8000000 /dev/zero | tr '\\0' a); while :; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.1; done"));
    await until("burner/0 to run", async () => (await taskState("burner/0")) === "running", { timeoutMs: 60_000, intervalMs: 200 });

    const task = await openAs(theCell().token, "/tasks/burner/0");
    const loadId = await task.evaluate(() => window.__loadId);
    assert.ok(loadId, "the client script ran");
    assert.equal(await task.locator("#usage-charts svg.chart").count(), 2, "a CPU and a memory chart");
    const first = await samples(task, "chart-task-cpu");
    await task.waitForFunction((n) => Number(document.getElementById("chart-task-cpu")?.getAttribute("data-samples")) >= Math.max(n, 0) + 2, first, { timeout: 30_000 });
    assert.equal(await task.locator("#chart-task-memory line.limit").count(), 1, "the memory request is drawn as a line");
    assert.match((await task.locator("#chart-task-cpu").textContent()) ?? "", /request 0\.1 cores/);
    assert.ok((await task.locator("#chart-task-cpu polyline").count()) === 1, "two or more samples make a line");
    const memory = Number(await task.locator("#chart-task-memory").getAttribute("data-last"));
    assert.ok(memory > 1024 * 1024, `the memory chart shows the task's memory (${memory} bytes)`);
    assert.equal(await task.evaluate(() => window.__loadId), loadId, "updated in place, never reloaded");
    await shot(task, "task-usage");

    // Restart from the page: the attempt is stopped and the restart policy starts the next one on the node.
    await task.locator('a[data-action="restart"]').click();
    await task.waitForSelector("form.confirm");
    await task.locator("form.confirm button").click();
    await task.waitForURL(`${url}/tasks/burner/0`);
    await until("attempt 2 of burner/0 to run", async () => {
      const t = (await (await api("/v1/tasks/burner%2F0")).json()) as { attempt: number; state: string };
      return t.attempt === 2 && t.state === "running";
    }, { timeoutMs: 60_000, intervalMs: 200 });
    await task.close();

    const node = await openAs(theCell().token, `/nodes/${encodeURIComponent(nodeId)}`);
    assert.equal(await node.locator("#chart-node-cpu line.limit").count(), 1, "the node's capacity is drawn as a line");
    const nodeFirst = await samples(node, "chart-node-memory");
    await node.waitForFunction((n) => Number(document.getElementById("chart-node-memory")?.getAttribute("data-samples")) >= n + 2, nodeFirst, { timeout: 30_000 });
    assert.ok(Number(await node.locator("#chart-node-memory").getAttribute("data-last")) > 0);
    await shot(node, "node-usage");
    await node.close();
    await api("/v1/jobs/burner", { method: "DELETE" });
  });

  it("a job of 300 tasks shows counts for all, 200 rows a page, and follows a kill from the page live", async () => {
    // Nothing fits (a terabyte each): every task stays pending until the kill.
    const id = await submit(`name: wide
type: batch
instances: 300
isolation: process
command: ["true"]
resources: { cpu: 0.1, memory: 1TiB, disk: 1MiB }
`);
    await until("300 tasks", async () => ((await (await api(`/v1/jobs/${id}`)).json()) as { tasks?: { pending?: number } }).tasks?.pending === 300, { timeoutMs: 30_000, intervalMs: 200 });
    const bytes = (await (await fetch(`${url}/jobs/${id}`, { headers: { cookie: `torca_session=${encodeURIComponent(theCell().token)}` } })).text()).length;
    assert.ok(bytes < 300_000, `the page of 300 tasks is ${bytes} bytes`);
    const watcher = await openAs(theCell().token, `/jobs/${id}`);
    const loadId = await watcher.evaluate(() => window.__loadId);
    assert.equal(await watcher.locator("#tasks-table tbody tr").count(), 200);
    assert.equal(await watcher.locator('[data-state-count="pending"]').textContent(), "300");
    assert.match((await watcher.locator("#task-pager").textContent()) ?? "", /Tasks 1–200 of 300/);
    await watcher.waitForFunction(() => document.getElementById("live")?.textContent === "live", undefined, { timeout: 15_000 });

    const other = await openAs(theCell().token, `/jobs/${id}`);
    await other.locator('a[rel="next"]').click();
    await other.waitForSelector("#task-pager:has-text('Tasks 201–300 of 300')");
    assert.equal(await other.locator("#tasks-table tbody tr").count(), 100);
    assert.equal(await other.locator("#tasks-table tbody tr").first().getAttribute("data-task"), "200");
    await other.locator('#task-counts a:has-text("running")').click();
    await other.waitForSelector("#task-pager:has-text('of 0 running')");
    assert.equal(await other.locator("#tasks-table tbody tr").count(), 0);

    // Kill from the page: the button leads to a confirmation; confirming POSTs the form.
    await other.goto(`${url}/jobs/${encodeURIComponent(id)}`);
    await other.locator('a[data-action="kill"]').click();
    await other.waitForSelector("form.confirm");
    assert.match((await other.locator("form.confirm").textContent()) ?? "", /Kill job wide\?/);
    await other.locator("form.confirm button").click();
    await other.waitForURL(`${url}/jobs/${id}`);
    await until("the job to be killed", async () => ((await (await api(`/v1/jobs/${id}`)).json()) as { desired: string }).desired === "stop", { timeoutMs: 15_000, intervalMs: 200 });

    // The first tab counted every task's change and updated only its 200 rows.
    await watcher.waitForFunction(() => document.querySelector('[data-state-count="killed"]')?.textContent === "300", undefined, { timeout: 60_000 });
    assert.equal(await watcher.locator('[data-state-count="pending"]').textContent(), "0");
    assert.equal(await watcher.locator("#tasks-table tbody tr").count(), 200, "no rows added for tasks off the page");
    assert.equal(await watcher.locator('#tasks-table tr[data-task="0"] [data-f="state"]').textContent(), "killed");
    assert.equal(await watcher.evaluate(() => window.__loadId), loadId, "never reloaded");
    await shot(watcher, "job-windowed");
    await watcher.close();
    await other.close();
  });

  it("a service's deployment card follows a new version live, and the service restarts (rolling) from its page", async () => {
    const service = (value: string) => `name: shop
type: service
instances: 2
isolation: process
command: ["/bin/sleep", "600"]
env: { VERSION: "${value}" }
resources: { cpu: 0.1, memory: 32MiB, disk: 1MiB }
update: { maxParallel: 2, minHealthyTime: 1s, drainDelay: 0s }
`;
    const versionRows = (page: Page) => page.evaluate(() => [...document.querySelectorAll("#deployment-versions tbody tr")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent).join(" ")));
    await submit(service("v0"));
    await until("two instances of shop running", async () => (await taskState("shop/0")) === "running" && (await taskState("shop/1")) === "running", { timeoutMs: 60_000, intervalMs: 200 });
    const page = await openAs(theCell().token, "/jobs/shop");
    const loadId = await page.evaluate(() => window.__loadId);
    await page.waitForFunction(() => document.getElementById("live")?.textContent === "live", undefined, { timeout: 15_000 });
    // Version, instances, healthy, unhealthy, canaries, stopping.
    assert.match((await versionRows(page)).join("|"), /^0 2 \d 0 0 0$/);

    const res = await api("/v1/jobs", { method: "POST", headers: { "content-type": "application/yaml" }, body: service("v1") });
    assert.equal(res.status, 201, await res.text());
    await page.waitForFunction(() => document.querySelector("#deployment-versions tbody tr td")?.textContent === "1" && document.getElementById("job-version")?.textContent === "1", undefined, { timeout: 60_000 });
    await page.waitForFunction(() => /^successful/.test(document.getElementById("job-deployment")?.textContent ?? ""), undefined, { timeout: 90_000 });
    await until("the card's counts to settle on version 1", async () => JSON.stringify(await versionRows(page)) === JSON.stringify(["1 2 2 0 0 0"]), { timeoutMs: 30_000, intervalMs: 250 });
    assert.equal(await page.evaluate(() => window.__loadId), loadId, "followed live, never reloaded");

    // Restart from the page: a confirmation, then a rolling replacement of both instances.
    const attempts = async () => ((await (await api("/v1/jobs/shop")).json()) as { taskList: { attempt: number; state: string }[] }).taskList;
    const before = (await attempts()).map((t) => t.attempt);
    await page.locator('a[data-action="restart"]').click();
    await page.waitForSelector("form.confirm");
    assert.match((await page.locator("form.confirm").textContent()) ?? "", /Restart job shop\?/);
    await page.locator("form.confirm button").click();
    await page.waitForURL(`${url}/jobs/shop`);
    await until("both instances replaced and running", async () => {
      const now = await attempts();
      return now.length === 2 && now.every((t, i) => t.state === "running" && t.attempt > (before[i] ?? 0));
    }, { timeoutMs: 90_000, intervalMs: 250 });
    await shot(page, "job-deployment");
    await page.close();
    await api("/v1/jobs/shop", { method: "DELETE" });
  });

  it("drains and undrains the node from its page, each step confirmed and audited", async () => {
    const page = await openAs(theCell().token, `/nodes/${encodeURIComponent(nodeId)}`);
    assert.equal(await page.locator('a[data-action="undrain"]').count(), 0, "a ready node offers no undrain");
    await page.locator('a[data-action="drain"]').click();
    await page.waitForSelector("form.confirm");
    await page.locator("form.confirm button").click();
    await page.waitForSelector('a[data-action="undrain"]');
    assert.equal(await nodeState(), "draining");
    await page.locator('a[data-action="undrain"]').click();
    await page.locator("form.confirm button").click();
    await page.waitForSelector('a[data-action="drain"]');
    assert.equal(await nodeState(), "ready");
    await page.close();
    const audit = await until("the audit entries", async () => {
      const entries = ((await (await api("/v1/audit")).json()) as { entries: { path: string; status: number; who: string; method: string }[] }).entries;
      const mine = entries.filter((e) => e.path.startsWith(`/actions/node/`));
      return mine.length >= 2 ? mine : undefined;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    assert.deepEqual(audit.slice(0, 2).map((e) => [e.method, e.path, e.status]), [
      ["POST", `/actions/node/${encodeURIComponent(nodeId)}/undrain`, 303],
      ["POST", `/actions/node/${encodeURIComponent(nodeId)}/drain`, 303],
    ]);
  });

  it("refuses a POST without the session's CSRF token, and a read-only token sees no buttons and is refused", async () => {
    await submit(job("keeper", "sleep 120"));
    await until("keeper/0 to exist", async () => (await taskState("keeper/0")) !== undefined, { timeoutMs: 30_000, intervalMs: 200 });
    const admin = await openAs(theCell().token, `/nodes/${encodeURIComponent(nodeId)}`);
    const path = `/actions/node/${encodeURIComponent(nodeId)}/drain`;
    const refused = await admin.evaluate(async (p) => {
      const none = await fetch(p, { method: "POST", body: new URLSearchParams() });
      const wrong = await fetch(p, { method: "POST", body: new URLSearchParams({ csrf: "not-the-token" }) });
      return [none.status, wrong.status, await wrong.text()];
    }, path);
    assert.deepEqual(refused.slice(0, 2), [403, 403]);
    assert.match(String(refused[2]), /CSRF token is missing or does not match/);
    assert.equal(await nodeState(), "ready", "nothing was drained");
    await admin.close();

    assert.ok(browser);
    await browser.clearCookies();
    const viewer = await openAs(VIEWER_TOKEN, "/jobs/keeper");
    assert.equal(await viewer.locator("h1").first().textContent(), "Job keeper");
    assert.equal(await viewer.locator("#actions a").count(), 0, "no kill button for a read-only token");
    await viewer.goto(`${url}/nodes/${encodeURIComponent(nodeId)}`);
    assert.equal(await viewer.locator("#actions a").count(), 0, "no drain button for a read-only token");
    const confirm = await viewer.goto(`${url}/actions/job/keeper/kill`);
    assert.equal(confirm?.status(), 403, "no confirmation page either");
    // Even with the right CSRF token for its own session, the server refuses the role.
    const statuses = await viewer.evaluate(
      async ([p, csrf]) => (await fetch(p!, { method: "POST", body: new URLSearchParams({ csrf: csrf! }) })).status,
      ["/actions/job/keeper/kill", csrfToken(VIEWER_TOKEN)],
    );
    assert.equal(statuses, 403);
    assert.equal(((await (await api("/v1/jobs/keeper")).json()) as { desired: string }).desired, "run", "the job was not killed");
    await viewer.close();
    await browser.clearCookies();
    await api("/v1/jobs/keeper", { method: "DELETE" });
  });
});
