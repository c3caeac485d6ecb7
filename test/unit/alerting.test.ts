import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { NotifySpec } from "../../src/common/types.js";
import {
  formatAlert,
  formatStormSummary,
  escapeHtml,
  truncateChars,
  SMS_MAX_CHARS,
} from "../../src/alerting/message.js";
import { AlertPolicy, describeKindCounts, retryDelay } from "../../src/alerting/policy.js";
import { kindsForAlertOn, recipientsForJobs, resolveTargets, type ClusterRoute } from "../../src/alerting/router.js";
import { renderTemplate, SmsNotifier } from "../../src/alerting/sms.js";
import { ManualClock } from "../../src/common/clock.js";
import type { AlertEvent, AlertKind } from "../../src/alerting/types.js";
import { crashLoopAlert } from "../../src/master/crashloop-alert.js";

const T0 = 1_700_000_000_000;

function event(over: Partial<AlertEvent> = {}): AlertEvent {
  return {
    key: "task-failed:web/0:attempt-1",
    kind: "task-failed",
    severity: "critical",
    subject: "web/0 failed",
    text: "exit 1",
    jobId: "web",
    taskId: "web/0",
    at: T0,
    recipients: { email: ["ops@example.com"], sms: [] },
    ...over,
  };
}

describe("router", () => {
  it("maps notify.on values to alert kinds", () => {
    assert.deepEqual([...kindsForAlertOn(["failed"])], ["task-failed"]);
    assert.deepEqual([...kindsForAlertOn(["lost"])].sort(), ["node-lost", "task-lost"]);
    assert.deepEqual([...kindsForAlertOn(["oom-killed", "unhealthy"])].sort(), ["service-unhealthy", "task-oom-killed"]);
    assert.deepEqual([...kindsForAlertOn(["cron-failed"])].sort(), ["cron-failed", "cron-missed"]);
    assert.deepEqual([...kindsForAlertOn(["completed"])], ["job-completed"]);
    assert.equal(kindsForAlertOn([]).size, 0);
  });

  it("collects recipients only from jobs subscribed to the kind, de-duplicated", () => {
    const a: NotifySpec = { email: ["ops@example.com", " dev@example.com "], sms: ["+15550100"], on: ["lost"] };
    const b: NotifySpec = { email: ["OPS@example.com", "b@example.com"], sms: ["+15550100", "+15550101"], on: ["lost", "failed"] };
    const c: NotifySpec = { email: ["c@example.com"], sms: [], on: ["failed"] };
    assert.deepEqual(recipientsForJobs("node-lost", [a, b, c, undefined]), {
      email: ["ops@example.com", "dev@example.com", "b@example.com"],
      sms: ["+15550100", "+15550101"],
    });
    assert.deepEqual(recipientsForJobs("task-failed", [a, b, c]), { email: ["OPS@example.com", "b@example.com", "c@example.com"], sms: ["+15550100", "+15550101"] });
    assert.deepEqual(recipientsForJobs("task-oom-killed", [a, b, c]), { email: [], sms: [] });
  });

  it("adds matching cluster routes to the event's recipients", () => {
    const routes: ClusterRoute[] = [
      { kinds: "*", email: ["all@example.com"], sms: [] },
      { kinds: ["node-lost", "manager-failover"], email: ["infra@example.com"], sms: ["+15550199"] },
    ];
    const onNodeLost = resolveTargets("node-lost", { email: ["all@example.com"], sms: [] }, routes);
    assert.deepEqual(onNodeLost, [
      { channel: "email", to: "all@example.com" },
      { channel: "email", to: "infra@example.com" },
      { channel: "sms", to: "+15550199" },
    ]);
    assert.deepEqual(resolveTargets("task-failed", { email: [], sms: [] }, routes), [{ channel: "email", to: "all@example.com" }]);
    assert.deepEqual(resolveTargets("task-failed", { email: [], sms: [] }, []), []);
  });
});

describe("policy", () => {
  it("dedups an incident key within the window, and only within it", () => {
    const p = new AlertPolicy({ dedupWindowMs: 3_600_000 });
    assert.equal(p.firstSighting("k1", T0), true);
    assert.equal(p.firstSighting("k1", T0 + 1000), false);
    assert.equal(p.firstSighting("k2", T0 + 1000), true);
    assert.equal(p.firstSighting("k1", T0 + 3_599_999), false);
    assert.equal(p.firstSighting("k1", T0 + 3_600_000), true);
    assert.equal(p.firstSighting("k1", T0 + 3_600_001), false);
  });

  it("rate-limits each recipient with a token bucket", () => {
    const p = new AlertPolicy({ rateLimit: { capacity: 10, refillMs: 600_000 }, storm: { threshold: 1000, windowMs: 60_000 } });
    const a = { kind: "task-failed" as const, severity: "critical" as const, subject: "x" };
    const decisions = Array.from({ length: 12 }, (_, i) => p.admit("email:ops", a, T0 + i).action);
    assert.deepEqual(decisions, [...Array<string>(10).fill("send"), "hold", "hold"]);
    assert.deepEqual(p.admit("email:ops", a, T0 + 20), { action: "hold", reason: "rate-limit" });
    // Another recipient has its own bucket.
    assert.equal(p.admit("sms:+1555", a, T0 + 20).action, "send");
    // One token comes back every 60 s (10 per 10 min): none yet after 59 s, two after 121 s.
    assert.equal(p.admit("email:ops", a, T0 + 20 + 59_000).action, "hold");
    assert.equal(p.admit("email:ops", a, T0 + 20 + 121_000).action, "send");
    assert.equal(p.admit("email:ops", a, T0 + 20 + 121_001).action, "send");
    assert.equal(p.admit("email:ops", a, T0 + 20 + 121_002).action, "hold");
  });

  it("collapses a storm past the threshold into one summary at the window's end", () => {
    const p = new AlertPolicy({ rateLimit: { capacity: 1000, refillMs: 1000 }, storm: { threshold: 20, windowMs: 60_000 } });
    const kinds: AlertKind[] = [...Array<AlertKind>(30).fill("node-lost"), ...Array<AlertKind>(17).fill("task-lost")];
    // 20 node-lost first, then 10 more node-lost and 17 task-lost: 27 held.
    const actions = kinds.map((kind, i) => p.admit("email:ops", { kind, severity: kind === "node-lost" ? "critical" : "warning", subject: `${kind} #${i}` }, T0 + i * 1000));
    assert.equal(actions.filter((a) => a.action === "send").length, 20);
    assert.equal(actions.filter((a) => a.action === "hold").length, 27);
    assert.equal(p.nextDeadline(), T0 + 60_000);
    assert.deepEqual(p.takeDueSummaries(T0 + 59_999), []);
    const [s, ...rest] = p.takeDueSummaries(T0 + 60_000);
    assert.equal(rest.length, 0);
    assert.ok(s);
    assert.equal(s.count, 27);
    assert.deepEqual(s.byKind, { "node-lost": 10, "task-lost": 17 });
    assert.equal(s.severity, "critical");
    assert.deepEqual(s.samples, ["node-lost #20", "node-lost #21", "node-lost #22", "node-lost #23", "node-lost #24"]);
    const msg = formatStormSummary(s);
    assert.match(msg.text, /^27 more alerts in the last minute: 17 task-lost, 10 node-lost\n/);
    assert.match(msg.text, /…and 22 more/);
    assert.equal(msg.subject, "[torca CRITICAL] 27 more alerts (17 task-lost, 10 node-lost)");
    assert.ok(msg.short.length <= SMS_MAX_CHARS);
    // Window over: the next alert opens a fresh window and is sent.
    assert.equal(p.admit("email:ops", { kind: "node-lost", severity: "critical", subject: "n" }, T0 + 60_001).action, "send");
    assert.equal(p.nextDeadline(), undefined);
    assert.deepEqual(p.takeDueSummaries(T0 + 200_000), []);
  });

  it("reports alerts refused by the rate limit in the window's summary", () => {
    const p = new AlertPolicy({ rateLimit: { capacity: 2, refillMs: 600_000 }, storm: { threshold: 20, windowMs: 60_000 } });
    const a = { kind: "task-failed" as const, severity: "warning" as const, subject: "f" };
    for (let i = 0; i < 5; i++) p.admit("sms:+1", a, T0 + i);
    // A later alert in a new window flushes the old one into a ready summary.
    p.admit("sms:+1", a, T0 + 70_000);
    const sums = p.takeDueSummaries(T0 + 70_000);
    assert.equal(sums.length, 1);
    assert.equal(sums[0]!.count, 3);
    assert.equal(sums[0]!.windowStart, T0);
  });

  it("formats kind counts largest first", () => {
    assert.equal(describeKindCounts({ "task-lost": 7, "node-lost": 20 }), "20 node-lost, 7 task-lost");
    assert.equal(describeKindCounts({ "task-lost": 2, "node-lost": 2 }), "2 node-lost, 2 task-lost");
  });

  it("computes an exponential, capped retry schedule", () => {
    const cfg = { initialDelayMs: 5000, factor: 2, maxDelayMs: 60_000 };
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, cfg)), [5000, 10_000, 20_000, 40_000, 60_000, 60_000]);
  });
});

describe("messages", () => {
  it("escapes user data in HTML, keeps the link, and strips line breaks from the subject", () => {
    const m = formatAlert(event({ subject: "job <script>alert(1)</script>\r\nBcc: evil@example.com", jobId: "<script>x</script>", link: "http://127.0.0.1:7400/jobs/web?a=1&b=2" }));
    assert.ok(!m.subject.includes("\n") && !m.subject.includes("\r"));
    assert.ok(m.subject.startsWith("[torca CRITICAL] job <script>"));
    assert.ok(m.html);
    assert.ok(!m.html.includes("<script>"), "no raw script tag in html");
    assert.ok(m.html.includes("&lt;script&gt;x&lt;/script&gt;"));
    assert.ok(m.html.includes('href="http://127.0.0.1:7400/jobs/web?a=1&amp;b=2"'));
    assert.ok(m.text.includes("http://127.0.0.1:7400/jobs/web?a=1&b=2"));
    assert.ok(m.text.includes("Task: web/0"));
  });

  it("drops non-http links", () => {
    const m = formatAlert(event({ link: "javascript:alert(1)" }));
    assert.ok(!m.html!.includes("javascript:"));
    assert.ok(!m.text.includes("javascript:"));
  });

  it("truncates to 160 characters with an ellipsis without splitting characters", () => {
    assert.equal(truncateChars("abc", 160), "abc");
    const long = "😀".repeat(200);
    const t = truncateChars(long, 160);
    assert.equal(Array.from(t).length, 160);
    assert.ok(t.endsWith("😀…"));
    const m = formatAlert(event({ subject: "x".repeat(300), link: "http://127.0.0.1/t/web/0" }));
    assert.equal(Array.from(m.short).length, 160);
    assert.ok(m.short.endsWith("… http://127.0.0.1/t/web/0"));
  });

  it("escapes every html special character", () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });
});

describe("sms templates", () => {
  it("JSON-escapes substitutions for a JSON body, once", () => {
    const out = renderTemplate('{"to":"{{to}}","text":"{{ text }}"}', { to: "+1555", text: 'he said "hi"\n{{to}} \\' }, "json");
    assert.deepEqual(JSON.parse(out), { to: "+1555", text: 'he said "hi"\n{{to}} \\' });
  });

  it("URL-encodes for forms and URLs", () => {
    assert.equal(renderTemplate("to={{to}}&msg={{text}}", { to: "+1 555", text: "a&b=c" }, "form"), "to=%2B1%20555&msg=a%26b%3Dc");
  });

  it("renders the default JSON body with the truncated short text", () => {
    const n = new SmsNotifier({ url: "http://127.0.0.1:9/send?to={{to}}" });
    const r = n.render("+15550100", { subject: "s", text: "t", short: "y".repeat(200) });
    assert.equal(r.url, "http://127.0.0.1:9/send?to=%2B15550100");
    const body = JSON.parse(r.body!) as { to: string; text: string };
    assert.equal(body.to, "+15550100");
    assert.equal(body.text.length, 160);
    assert.ok(body.text.endsWith("…"));
  });
});

describe("manual clock", () => {
  it("fires due timers in order and not the others", () => {
    const c = new ManualClock(0);
    const fired: string[] = [];
    c.setTimer(() => fired.push("b"), 20);
    c.setTimer(() => fired.push("a"), 10);
    const h = c.setTimer(() => fired.push("x"), 15);
    c.setTimer(() => fired.push("late"), 100);
    c.clearTimer(h);
    c.advance(50);
    assert.deepEqual(fired, ["a", "b"]);
    assert.equal(c.now(), 50);
    assert.equal(c.pending(), 1);
  });
});

describe("master crash-loop alert", () => {
  it("keys an episode by its first exit and describes the last one", () => {
    const exits = [
      { at: T0, code: 3, signal: null, uptimeMs: 10 },
      { at: T0 + 4000, code: null, signal: "SIGSEGV", uptimeMs: 12 },
    ];
    const e = crashLoopAlert("host-1", "agent", exits, { email: ["ops@example.com"], sms: [] }, T0 + 5000);
    assert.equal(e.key, `daemon-crashloop:host-1:agent:${T0}`);
    assert.equal(e.kind, "daemon-crashloop");
    assert.equal(e.subject, "agent on host-1 is crash-looping (2 exits in 4s)");
    assert.match(e.text, /last run ended with killed by SIGSEGV/);
  });
});
