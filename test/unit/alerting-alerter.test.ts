import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Alerter, type AlerterOptions } from "../../src/alerting/alerter.js";
import { ManualClock } from "../../src/common/clock.js";
import { claimNodeName, KvAlertLedger, MemoryAlertLedger, type AlertLedger, type LedgerKV } from "../../src/alerting/ledger.js";
import type { AlertEvent, AlertMessage, Channel, DeliveryRecord, Notifier } from "../../src/alerting/types.js";

const T0 = 1_700_000_000_000;

/** Records what it is asked to send; fails the first `failures` sends with the given message. */
class FakeNotifier implements Notifier {
  readonly sent: { to: string; msg: AlertMessage; at: number }[] = [];
  calls = 0;
  closed = false;
  constructor(
    readonly channel: Channel,
    private readonly clock: ManualClock,
    private failures = 0,
  ) {}
  async send(to: string, msg: AlertMessage): Promise<void> {
    this.calls++;
    if (this.failures > 0) {
      this.failures--;
      throw new Error(`gateway down (${this.calls})`);
    }
    this.sent.push({ to, msg, at: this.clock.now() });
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function event(over: Partial<AlertEvent> = {}): AlertEvent {
  return {
    key: "task-failed:web/0:attempt-1",
    kind: "task-failed",
    severity: "critical",
    subject: "web/0 failed",
    text: "exit 1",
    at: T0,
    recipients: { email: ["ops@example.com"], sms: ["+15550100"] },
    ...over,
  };
}

function setup({ emailFailures, smsFailures, ...over }: Partial<AlerterOptions> & { emailFailures?: number; smsFailures?: number } = {}) {
  const clock = new ManualClock(T0);
  const email = new FakeNotifier("email", clock, emailFailures);
  const sms = new FakeNotifier("sms", clock, smsFailures);
  const ledger = over.ledger ?? new MemoryAlertLedger();
  const changes: DeliveryRecord[] = [];
  const alerter = new Alerter({
    ledger,
    notifiers: [email, sms],
    clock,
    instanceId: "t",
    retry: { attempts: 4, initialDelayMs: 1000, factor: 2, maxDelayMs: 3000 },
    onDelivery: (r) => changes.push(r),
    ...over,
  });
  return { clock, email, sms, ledger, alerter, changes };
}

/** Counts claims so a test can see whether the ledger was touched. */
class CountingLedger extends MemoryAlertLedger {
  claimCalls = 0;
  override async claim(key: string): Promise<boolean> {
    this.claimCalls++;
    return super.claim(key);
  }
}

describe("alerter", () => {
  it("delivers to email and sms, then refuses the same incident (dedup and durable claim)", async () => {
    const { alerter, email, sms, ledger } = setup();
    const r = await alerter.raise(event());
    assert.equal(r.status, "queued");
    await alerter.idle();
    assert.deepEqual(email.sent.map((s) => s.to), ["ops@example.com"]);
    assert.deepEqual(sms.sent.map((s) => s.to), ["+15550100"]);
    assert.equal(email.sent[0]!.msg.subject, "[torca CRITICAL] web/0 failed");
    assert.equal((await alerter.raise(event())).status, "duplicate");

    // A second manager on the same ledger (after a failover) does not alert it again.
    const other = setup({ ledger });
    assert.equal((await other.alerter.raise(event())).status, "already-claimed");
    await other.alerter.idle();
    assert.equal(other.email.calls + other.sms.calls, 0);

    const hist = await alerter.history(10);
    assert.equal(hist.length, 2);
    assert.ok(hist.every((h) => h.status === "sent" && h.attempts === 1));
    assert.deepEqual(JSON.parse(JSON.stringify(hist)), hist, "history is plain JSON");
  });

  it("does not claim events nobody is subscribed to", async () => {
    const ledger = new CountingLedger();
    const { alerter } = setup({ ledger });
    assert.equal((await alerter.raise(event({ recipients: { email: [], sms: [] } }))).status, "no-recipients");
    assert.equal(ledger.claimCalls, 0);
  });

  it("adds cluster routes", async () => {
    const { alerter, email } = setup({ routes: [{ kinds: ["node-lost"], email: ["infra@example.com"], sms: [] }] });
    await alerter.raise(event({ key: "node-lost:a1:1", kind: "node-lost", recipients: { email: [], sms: [] } }));
    await alerter.idle();
    assert.deepEqual(email.sent.map((s) => s.to), ["infra@example.com"]);
  });

  it("retries failed deliveries with exponential backoff and records each attempt", async () => {
    const { alerter, clock, sms, changes } = setup({ smsFailures: 2 });
    await alerter.raise(event({ recipients: { email: [], sms: ["+15550100"] } }));
    await alerter.idle();
    let [rec] = await alerter.history(1);
    assert.equal(rec!.status, "retrying");
    assert.equal(rec!.attempts, 1);
    assert.equal(rec!.lastError, "gateway down (1)");
    assert.equal(rec!.nextAttemptAt, T0 + 1000);

    clock.advance(999);
    await alerter.idle();
    assert.equal(sms.calls, 1, "no retry before the backoff delay");
    clock.advance(1);
    await alerter.idle();
    [rec] = await alerter.history(1);
    assert.equal(rec!.attempts, 2);
    assert.equal(rec!.nextAttemptAt, T0 + 1000 + 2000);

    clock.advance(2000);
    await alerter.idle();
    [rec] = await alerter.history(1);
    assert.equal(rec!.status, "sent");
    assert.equal(rec!.attempts, 3);
    assert.equal(rec!.lastError, undefined);
    assert.equal(sms.sent[0]!.at, T0 + 3000);
    assert.deepEqual(changes.map((c) => `${c.status}/${c.attempts}`), ["pending/0", "retrying/1", "retrying/2", "sent/3"]);
  });

  it("gives up after the configured attempts with a capped backoff", async () => {
    const { alerter, clock, email } = setup({ emailFailures: 100 });
    await alerter.raise(event({ recipients: { email: ["ops@example.com"], sms: [] } }));
    await alerter.idle();
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const before = email.calls;
      clock.advance(500);
      await alerter.idle();
      if (email.calls > before) times.push(clock.now() - T0);
    }
    // attempts at 0, +1000, +2000 (t=3000), +3000 capped (t=6000)
    assert.deepEqual(times, [1000, 3000]);
    clock.advance(2000);
    await alerter.idle();
    const [rec] = await alerter.history(1);
    assert.equal(rec!.status, "failed");
    assert.equal(rec!.attempts, 4);
    assert.equal(email.calls, 4);
    assert.equal(clock.pending(), 0, "no timer left behind");
  });

  it("collapses a storm into one summary sent at the window's end", async () => {
    const { alerter, clock, email } = setup({ policy: { storm: { threshold: 20, windowMs: 60_000 }, rateLimit: { capacity: 100, refillMs: 60_000 } } });
    for (let i = 0; i < 47; i++) {
      const kind = i < 30 ? "node-lost" : "task-lost";
      await alerter.raise(event({ key: `${kind}:${i}`, kind, subject: `${kind} ${i}`, recipients: { email: ["ops@example.com"], sms: [] } }));
      clock.advance(100);
    }
    await alerter.idle();
    assert.equal(email.sent.length, 20);
    const hist = await alerter.history(100);
    assert.equal(hist.filter((h) => h.status === "collapsed").length, 27);
    clock.advance(60_000 - 4700 - 1);
    await alerter.idle();
    assert.equal(email.sent.length, 20, "summary waits for the window's end");
    clock.advance(1);
    await alerter.idle();
    assert.equal(email.sent.length, 21);
    const summary = email.sent[20]!.msg;
    assert.match(summary.text, /^27 more alerts in the last minute: 17 task-lost, 10 node-lost/);
    const [rec] = await alerter.history(1);
    assert.equal(rec!.kind, "storm-summary");
    assert.equal(rec!.collapsedCount, 27);
    assert.equal(rec!.status, "sent");
  });

  it("close() cancels timers and leaves unfinished deliveries for the next primary to resume", async () => {
    const ledger = new MemoryAlertLedger();
    const a = setup({ ledger, smsFailures: 1 });
    await a.alerter.raise(event({ recipients: { email: [], sms: ["+15550100"] } }));
    await a.alerter.idle();
    assert.equal(a.clock.pending(), 1);
    await a.alerter.close();
    assert.equal(a.clock.pending(), 0);
    assert.ok(a.sms.closed && a.email.closed);
    assert.equal((await a.alerter.raise(event({ key: "other" }))).status, "closed");
    assert.equal((await ledger.list(1))[0]!.status, "retrying");

    const b = setup({ ledger });
    b.clock.advance(500);
    assert.equal(await b.alerter.resume(), 1);
    b.clock.advance(500);
    await b.alerter.idle();
    const [rec] = await ledger.list(1);
    assert.equal(rec!.status, "sent");
    assert.equal(rec!.attempts, 2);
    assert.equal(b.sms.sent.length, 1);
    assert.equal(await b.alerter.resume(), 0, "nothing left to resume");
  });

  it("records a failure when the channel has no notifier", async () => {
    const clock = new ManualClock(T0);
    const alerter = new Alerter({ ledger: new MemoryAlertLedger(), notifiers: [], clock });
    await alerter.raise(event({ recipients: { email: [], sms: ["+1"] } }));
    await alerter.idle();
    const [rec] = await alerter.history(1);
    assert.equal(rec!.status, "failed");
    assert.equal(rec!.lastError, "no sms notifier configured");
  });
});

/** A LedgerKV over a Map, with ZooKeeper's rule that a parent must exist before its child. */
class MapKV implements LedgerKV {
  readonly nodes = new Map<string, Buffer>([["/", Buffer.alloc(0)]]);
  private parentOf(path: string): string {
    const i = path.lastIndexOf("/");
    return i === 0 ? "/" : path.slice(0, i);
  }
  private checkParent(path: string): void {
    if (!this.nodes.has(this.parentOf(path))) throw new Error(`no node ${this.parentOf(path)}`);
  }
  async createIfAbsent(path: string, data: Buffer): Promise<boolean> {
    this.checkParent(path);
    if (this.nodes.has(path)) return false;
    this.nodes.set(path, data);
    return true;
  }
  async set(path: string, data: Buffer): Promise<void> {
    this.checkParent(path);
    this.nodes.set(path, data);
  }
  async get(path: string): Promise<Buffer | undefined> {
    return this.nodes.get(path);
  }
  async children(path: string): Promise<string[]> {
    return [...this.nodes.keys()].filter((p) => p !== path && this.parentOf(p) === path).map((p) => p.slice(path.length + 1));
  }
  async remove(path: string): Promise<void> {
    this.nodes.delete(path);
  }
}

function record(id: string, over: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return { id, key: "k", kind: "task-failed", severity: "critical", channel: "email", to: "a@b", status: "sent", attempts: 1, createdAt: 1, updatedAt: 1, message: { subject: "s", text: "t", short: "s" }, ...over };
}

describe("ledger", () => {
  for (const [name, make] of [
    ["memory", () => new MemoryAlertLedger()],
    ["kv", () => new KvAlertLedger(new MapKV(), { root: "/torca" })],
  ] as [string, () => AlertLedger][]) {
    it(`${name}: claims a key once and lists records newest first`, async () => {
      const l = make();
      assert.equal(await l.claim("task-failed:web/0:attempt-3"), true);
      assert.equal(await l.claim("task-failed:web/0:attempt-3"), false);
      assert.equal(await l.claim("task-failed:web/0:attempt-4"), true);
      await l.record(record("000001700000000001-000001-a"));
      await l.record(record("000001700000000003-000002-a"));
      await l.record(record("000001700000000002-000003-a"));
      await l.record(record("000001700000000001-000001-a", { status: "failed" }));
      const all = await l.list(10);
      assert.deepEqual(all.map((r) => r.id), ["000001700000000003-000002-a", "000001700000000002-000003-a", "000001700000000001-000001-a"]);
      assert.equal(all[2]!.status, "failed");
      assert.equal((await l.list(1)).length, 1);
    });
  }

  it("kv: stores claims under <root>/alerts with ZooKeeper-safe names, and prunes old entries", async () => {
    const kv = new MapKV();
    let now = 1000;
    const l = new KvAlertLedger(kv, { root: "/torca", now: () => now });
    await l.claim("task-failed:web/0:attempt-3");
    assert.ok(kv.nodes.has("/torca/alerts/task-failed%3Aweb%2F0%3Aattempt-3"));
    assert.equal(claimNodeName(".."), "%2E%2E");
    const long = claimNodeName("x".repeat(500));
    assert.ok(long.length < 200 && long !== claimNodeName("x".repeat(499)));
    await l.record(record(`${String(1500).padStart(15, "0")}-000001-a`));
    now = 5000;
    await l.claim("new");
    await l.record(record(`${String(5000).padStart(15, "0")}-000002-a`));
    assert.equal(await l.prune(2000), 2);
    assert.equal(await l.claim("task-failed:web/0:attempt-3"), true, "pruned claim is gone");
    assert.equal(await l.claim("new"), false);
    assert.equal((await l.list(10)).length, 1);
  });
});
