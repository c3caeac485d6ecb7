import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ring, samplesFor, UsageHistory } from "../../agent/usage-history.js";
import type { Caller } from "../../src/auth/grants.js";
import type { Job, TaskInstance } from "../../src/common/types.js";
import type { ManagerView } from "../../src/manager/http/api.js";
import { CSRF_FIELD, csrfToken, csrfValid } from "../../src/http/csrf.js";
import { lineChart } from "../../src/http/pages/chart.js";
import { actionPath, PAGE_ACTIONS } from "../../src/manager/http/pages/actions.js";
import { taskWindow, windowControls, windowQuery } from "../../src/manager/http/pages/task-window.js";
import { makeSpec } from "./scheduler-harness.js";

const fmt = (v: number) => `${v} u`;

function polylinePoints(svg: string): [number, number][] {
  const m = /<polyline[^>]* points="([^"]*)"/.exec(svg);
  assert.ok(m, svg);
  return m[1]!.split(" ").map((p) => p.split(",").map(Number) as [number, number]);
}

describe("the SVG line chart", () => {
  const points = [
    { at: 1000, value: 0 },
    { at: 2000, value: 1 },
    { at: 3000, value: 2 },
  ];

  it("draws one point per sample, left to right, higher values higher up", () => {
    const svg = lineChart({ id: "c", title: "CPU", points, format: fmt, empty: "none" });
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /data-samples="3"/);
    assert.match(svg, /data-last="2"/);
    const xy = polylinePoints(svg);
    assert.equal(xy.length, 3);
    assert.ok(xy[0]![0] < xy[1]![0] && xy[1]![0] < xy[2]![0], "time runs left to right");
    assert.ok(xy[0]![1] > xy[1]![1] && xy[1]![1] > xy[2]![1], "larger values are drawn higher (smaller y)");
    assert.match(svg, /now 2 u/);
  });

  it("draws the limit as a dashed line inside the plot, scaled with the data", () => {
    const svg = lineChart({ id: "c", title: "Memory", points, limit: { label: "request", value: 4 }, format: fmt, empty: "none" });
    const limit = /<line class="limit"[^>]* y1="([\d.]+)"/.exec(svg);
    assert.ok(limit, svg);
    const topOfData = Math.min(...polylinePoints(svg).map(([, y]) => y));
    assert.ok(Number(limit[1]) < topOfData, "a limit above every sample is drawn above the line");
    assert.match(svg, /request 4 u/);
  });

  it("says why there is nothing to draw, and a single sample is a dot", () => {
    const empty = lineChart({ id: "c", title: "CPU", points: [], format: fmt, empty: "no history: agent down" });
    assert.match(empty, /data-samples="0"/);
    assert.match(empty, /no history: agent down/);
    assert.ok(!empty.includes("<polyline"));
    const one = lineChart({ id: "c", title: "CPU", points: [{ at: 5, value: 1 }], format: fmt, empty: "" });
    assert.match(one, /<circle /);
  });

  it("escapes every text it is given", () => {
    const svg = lineChart({ id: `"><script>`, title: "<script>alert(1)</script>", points, limit: { label: "<b>", value: 1 }, format: () => "<i>", empty: "" });
    assert.ok(!/<script|<b>|<i>/.test(svg), svg);
  });
});

describe("the pages' CSRF token", () => {
  it("is accepted for its own session only", () => {
    const t = csrfToken("session-token-aaaaaaaaaaaaaaaa");
    assert.equal(csrfValid("session-token-aaaaaaaaaaaaaaaa", t), true);
    assert.equal(csrfValid("session-token-bbbbbbbbbbbbbbbb", t), false);
  });

  it("is refused when missing, empty, altered or without a session", () => {
    const s = "session-token-aaaaaaaaaaaaaaaa";
    const t = csrfToken(s);
    assert.equal(csrfValid(s, null), false);
    assert.equal(csrfValid(s, ""), false);
    assert.equal(csrfValid(s, `${t.slice(0, -1)}${t.endsWith("A") ? "B" : "A"}`), false);
    assert.equal(csrfValid(s, `${t}x`), false);
    assert.equal(csrfValid(undefined, t), false);
    assert.equal(CSRF_FIELD, "csrf");
  });

  it("does not reveal the session token", () => {
    const s = "session-token-aaaaaaaaaaaaaaaa";
    assert.ok(!csrfToken(s).includes(s));
  });
});

describe("the agent's usage history", () => {
  it("a ring keeps the newest items, oldest first", () => {
    const r = new Ring<number>(3);
    for (let i = 1; i <= 5; i++) r.push(i);
    assert.deepEqual(r.toArray(), [3, 4, 5]);
    assert.equal(r.size, 3);
  });

  it("holds one sample per interval over the window, bounded", () => {
    assert.equal(samplesFor(30 * 60_000, 5000), 360);
    assert.equal(samplesFor(30 * 60_000, 1), 2000);
    const h = new UsageHistory(5000, 60_000);
    assert.equal(h.capacity, 12);
    for (let i = 0; i < 100; i++) h.recordMachine(i * 5000, { cpuNs: i * 5e9, memoryBytes: i });
    assert.equal(h.machine().length, 12);
  });

  it("turns cumulative CPU time into cores used between readings", () => {
    const h = new UsageHistory(1000);
    h.recordTask("j/0", 1, 11_000, { cpuNs: 5e9, memoryBytes: 100 }, 1_000);
    h.recordTask("j/0", 1, 12_000, { cpuNs: 6.5e9, memoryBytes: 200 });
    assert.deepEqual(h.task("j/0"), {
      attempt: 1,
      samples: [
        { at: 11_000, cpu: 0.5, memory: 100 },
        { at: 12_000, cpu: 1.5, memory: 200 },
      ],
    });
  });

  it("starts over for a new attempt and forgets tasks no longer held", () => {
    const h = new UsageHistory(1000);
    h.recordTask("j/0", 1, 2000, { cpuNs: 1e9, memoryBytes: 1 }, 1000);
    h.recordTask("j/0", 2, 5000, { cpuNs: 1e9, memoryBytes: 2 }, 4000);
    assert.equal(h.task("j/0")!.attempt, 2);
    assert.equal(h.task("j/0")!.samples.length, 1);
    h.retain(new Set(["other/0"]));
    assert.equal(h.task("j/0"), undefined);
  });

  it("the machine's first reading only sets the baseline", () => {
    const h = new UsageHistory(1000);
    h.recordMachine(1000, { cpuNs: 1e9, memoryBytes: 5 });
    assert.deepEqual(h.machine(), []);
    h.recordMachine(2000, { cpuNs: 3e9, memoryBytes: 6 });
    assert.deepEqual(h.machine(), [{ at: 2000, cpu: 2, memory: 6 }]);
  });
});

describe("the job page's task window", () => {
  const tasks = Array.from({ length: 450 }, (_, i) => ({ id: `j/${i}`, jobId: "j", index: i, state: i % 3 === 0 ? "running" : "pending" }) as TaskInstance);

  it("counts every task and shows one page of rows", () => {
    const w = taskWindow(tasks, { page: 1 });
    assert.equal(w.rows.length, 200);
    assert.equal(w.pages, 3);
    assert.equal(w.counts.running, 150);
    assert.equal(w.counts.pending, 300);
    assert.equal(w.states.length, 450);
    assert.equal(w.states.slice(0, 3), "rpp");
    const last = taskWindow(tasks, { page: 3 });
    assert.deepEqual([last.rows[0]!.index, last.rows.length], [400, 50]);
  });

  it("filters by state and clamps the page", () => {
    const w = taskWindow(tasks, { state: "running", page: 9 });
    assert.equal(w.matching, 150);
    assert.equal(w.page, 1);
    assert.ok(w.rows.every((t) => t.state === "running"));
  });

  it("reads only valid query values, and links to the neighbouring pages", () => {
    assert.deepEqual(windowQuery({ state: "running", page: "2" }), { state: "running", page: 2 });
    assert.deepEqual(windowQuery({ state: "<x>", page: "-1" }), { page: 1 });
    const html = windowControls(taskWindow(tasks, { state: "pending", page: 1 }), { state: "pending", page: 1 });
    assert.match(html, /rel="next" href="\?state=pending&#38;page=2#tasks"/);
    assert.ok(!html.includes('rel="prev"'));
    assert.match(html, /data-state-count="pending">300</);
  });
});

describe("the pages' actions", () => {
  const caller = (role: Caller["role"], namespaces: Caller["namespaces"] = "*"): Caller => ({ name: role, role, namespaces });
  const action = (kind: string, name: string) => PAGE_ACTIONS.find((a) => a.kind === kind && a.name === name)!;

  it("kill and restart need submit in the job's namespace; drain and undrain need admin", () => {
    const kill = action("job", "kill");
    const restart = action("task", "restart");
    const drain = action("node", "drain");
    assert.equal(kill.allowed(caller("read"), "web"), false);
    assert.equal(kill.allowed(caller("submit"), "web"), true);
    assert.equal(kill.allowed(caller("submit", ["team-a"]), "web"), false);
    assert.equal(kill.allowed(caller("submit", ["team-a"]), "team-a:web"), true);
    assert.equal(restart.allowed(caller("submit", ["team-a"]), "team-a:web/3"), true);
    assert.equal(restart.allowed(caller("submit", ["team-a"]), "web/3"), false);
    assert.equal(restart.allowed(caller("manager"), "web/3"), false);
    assert.equal(drain.allowed(caller("submit"), "agent-1"), false);
    assert.equal(drain.allowed(caller("admin"), "agent-1"), true);
    assert.equal(action("node", "undrain").allowed(caller("read"), "agent-1"), false);
  });

  it("a rolling job restart is offered for running services, and promote only while a deployment awaits promotion; both need submit in the namespace", () => {
    const job = (id: string, type: "service" | "batch", status?: "running" | "awaiting-promotion"): Job => ({
      id,
      spec: makeSpec(id, { type }),
      source: "",
      status: "running",
      desired: "run",
      submittedAt: 0,
      updatedAt: 0,
      ...(status ? { deployment: { id: "d1", version: 1, status, description: "", startedAt: 0, progressAt: 0, healthy: 0, promoted: false } } : {}),
    });
    const jobs = new Map([["web", job("web", "service", "awaiting-promotion")], ["api", job("api", "service", "running")], ["batch", job("batch", "batch")]]);
    const v = { store: () => ({ jobs }) } as unknown as ManagerView;
    const restart = action("job", "restart");
    const promote = action("job", "promote");
    assert.deepEqual(["web", "api", "batch"].map((id) => restart.applies(v, id)), [true, true, false]);
    assert.deepEqual(["web", "api", "batch"].map((id) => promote.applies(v, id)), [true, false, false]);
    for (const a of [restart, promote]) {
      assert.equal(a.allowed(caller("read"), "web"), false);
      assert.equal(a.allowed(caller("submit", ["team-a"]), "web"), false);
      assert.equal(a.allowed(caller("submit"), "web"), true);
    }
  });

  it("confirmation and form paths encode ids", () => {
    assert.equal(actionPath("task", "team-a:web/3", "restart"), "/actions/task/team-a%3Aweb%2F3/restart");
  });
});
