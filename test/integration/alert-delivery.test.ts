import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { SMTPServer } from "smtp-server";
import { Alerter } from "../../src/alerting/alerter.js";
import { ManualClock } from "../../src/common/clock.js";
import { EmailNotifier } from "../../src/alerting/email.js";
import { MemoryAlertLedger } from "../../src/alerting/ledger.js";
import type { PolicyConfig } from "../../src/alerting/policy.js";
import { SmsNotifier } from "../../src/alerting/sms.js";
import type { AlertEvent } from "../../src/alerting/types.js";

/**
 * Real delivery: an SMTP server (smtp-server) and an HTTP SMS gateway, both
 * on 127.0.0.1, receive what the Alerter sends. Time for backoff and storm
 * windows is a ManualClock, so nothing here sleeps.
 */

interface Mail {
  rcpt: string[];
  headers: Map<string, string>;
  text: string;
  html: string;
}

interface SmsRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Header block → lower-cased name → unfolded value. */
function parseHeaders(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.replace(/\r\n[ \t]+/g, " ").split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) out.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return out;
}

function decodeBody(body: string, encoding: string | undefined): string {
  switch ((encoding ?? "7bit").toLowerCase()) {
    case "quoted-printable":
      return Buffer.from(
        body.replace(/=\r\n/g, "").replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
        "latin1",
      ).toString("utf8");
    case "base64":
      return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
    default:
      return body;
  }
}

/** Enough MIME for what nodemailer produces here: one multipart/alternative with a text and an html part. */
function parseMail(raw: string, rcpt: string[]): Mail {
  const split = raw.indexOf("\r\n\r\n");
  const headers = parseHeaders(raw.slice(0, split));
  const body = raw.slice(split + 4);
  const boundary = /boundary="?([^";]+)"?/.exec(headers.get("content-type") ?? "")?.[1];
  const mail: Mail = { rcpt, headers, text: "", html: "" };
  if (!boundary) {
    mail.text = decodeBody(body, headers.get("content-transfer-encoding"));
    return mail;
  }
  for (const part of body.split(`--${boundary}`).slice(1)) {
    if (part.startsWith("--")) break;
    const p = part.replace(/^\r\n/, "");
    const ps = p.indexOf("\r\n\r\n");
    const ph = parseHeaders(p.slice(0, ps));
    const content = decodeBody(p.slice(ps + 4).replace(/\r\n$/, ""), ph.get("content-transfer-encoding"));
    if ((ph.get("content-type") ?? "").startsWith("text/plain")) mail.text = content;
    if ((ph.get("content-type") ?? "").startsWith("text/html")) mail.html = content;
  }
  return mail;
}

const T0 = 1_700_000_000_000;
const mails: Mail[] = [];
const smsRequests: SmsRequest[] = [];
let smsFailuresLeft = 0;
let smtp: SMTPServer;
let smtpPort = 0;
let gateway: Server;
let gatewayUrl = "";

before(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push(parseMail(Buffer.concat(chunks).toString("utf8"), session.envelope.rcptTo.map((r) => r.address)));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
  smtpPort = (smtp.server.address() as AddressInfo).port;

  gateway = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      smsRequests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      if (smsFailuresLeft > 0) {
        smsFailuresLeft--;
        res.writeHead(503, { "content-type": "text/plain" }).end("try later");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) => smtp.close(resolve));
  await new Promise<void>((resolve) => gateway.close(() => resolve()));
});

function makeAlerter(policy: Partial<PolicyConfig> = {}) {
  const clock = new ManualClock(T0);
  const alerter = new Alerter({
    ledger: new MemoryAlertLedger(),
    notifiers: [
      new EmailNotifier({ host: "127.0.0.1", port: smtpPort, secure: false, from: "Torca <torca@example.com>", timeoutMs: 5000 }),
      new SmsNotifier({
        url: `${gatewayUrl}/v1/send`,
        headers: { "content-type": "application/json; charset=utf-8", "x-api-key": "k1" },
        body: '{"phone":"{{to}}","message":"{{text}}","sender":"torca"}',
        timeoutMs: 5000,
        retries: 0,
      }),
    ],
    clock,
    instanceId: "it",
    policy,
    retry: { attempts: 4, initialDelayMs: 2000, factor: 2, maxDelayMs: 60_000 },
  });
  return { alerter, clock };
}

function event(over: Partial<AlertEvent> = {}): AlertEvent {
  return {
    key: "task-failed:evil/0:attempt-1",
    kind: "task-failed",
    severity: "critical",
    subject: "Task <script>alert(1)</script>/0 failed",
    text: 'Job <script>alert(1)</script> task 0 exited with status 1 & "oops"',
    jobId: "<script>alert(1)</script>",
    taskId: "<script>alert(1)</script>/0",
    link: "http://127.0.0.1:7400/tasks/evil%2F0?tab=logs&x=1",
    at: T0,
    recipients: { email: ["ops@example.com"], sms: ["+15550100"] },
    ...over,
  };
}

function reset(): void {
  mails.length = 0;
  smsRequests.length = 0;
  smsFailuresLeft = 0;
}

describe("alert delivery over SMTP and an HTTP SMS gateway", () => {
  it("delivers an escaped HTML + text email and a templated SMS, once per incident", async () => {
    reset();
    const { alerter } = makeAlerter();
    const r = await alerter.raise(event());
    assert.equal(r.status, "queued");
    await alerter.idle();

    assert.equal(mails.length, 1);
    const m = mails[0]!;
    assert.deepEqual(m.rcpt, ["ops@example.com"]);
    assert.equal(m.headers.get("subject"), "[torca CRITICAL] Task <script>alert(1)</script>/0 failed");
    assert.match(m.headers.get("from") ?? "", /torca@example\.com/);
    assert.match(m.text, /^Job <script>alert\(1\)<\/script> task 0 exited with status 1 & "oops"/);
    assert.match(m.text, /Task: <script>alert\(1\)<\/script>\/0/);
    assert.ok(m.text.includes("http://127.0.0.1:7400/tasks/evil%2F0?tab=logs&x=1"));
    assert.ok(m.html.length > 0);
    assert.ok(!/<script/i.test(m.html), "no script tag survives in the HTML part");
    assert.ok(m.html.includes("Job &lt;script&gt;alert(1)&lt;/script&gt; task 0 exited with status 1 &amp; &quot;oops&quot;"));
    assert.ok(m.html.includes('<a href="http://127.0.0.1:7400/tasks/evil%2F0?tab=logs&amp;x=1">'));

    assert.equal(smsRequests.length, 1);
    const s = smsRequests[0]!;
    assert.equal(s.method, "POST");
    assert.equal(s.url, "/v1/send");
    assert.equal(s.headers["x-api-key"], "k1");
    const body = JSON.parse(s.body) as { phone: string; message: string; sender: string };
    assert.equal(body.phone, "+15550100");
    assert.equal(body.sender, "torca");
    assert.ok(body.message.startsWith("CRITICAL Task <script>alert(1)</script>/0 failed"));
    assert.ok(body.message.endsWith(" http://127.0.0.1:7400/tasks/evil%2F0?tab=logs&x=1"));
    assert.ok(Array.from(body.message).length <= 160);

    // Dedup: the same incident again sends nothing.
    assert.equal((await alerter.raise(event())).status, "duplicate");
    await alerter.idle();
    assert.equal(mails.length, 1);
    assert.equal(smsRequests.length, 1);
    await alerter.close();
  });

  it("truncates a long SMS to 160 characters with an ellipsis", async () => {
    reset();
    const { alerter } = makeAlerter();
    await alerter.raise(event({ key: "long", subject: "é".repeat(400), link: undefined, recipients: { email: [], sms: ["+15550100"] } }));
    await alerter.idle();
    const body = JSON.parse(smsRequests[0]!.body) as { message: string };
    assert.equal(Array.from(body.message).length, 160);
    assert.ok(body.message.endsWith("é…"));
    await alerter.close();
  });

  it("rate-limits one recipient", async () => {
    reset();
    const { alerter } = makeAlerter({ rateLimit: { capacity: 3, refillMs: 600_000 } });
    for (let i = 0; i < 5; i++) await alerter.raise(event({ key: `rl-${i}`, recipients: { email: [], sms: ["+15550100"] } }));
    await alerter.idle();
    assert.equal(smsRequests.length, 3);
    const hist = await alerter.history(10);
    assert.deepEqual(hist.map((h) => h.status).sort(), ["sent", "sent", "sent", "suppressed", "suppressed"]);
    await alerter.close();
  });

  it("sends a storm summary email at the end of the window", async () => {
    reset();
    const { alerter, clock } = makeAlerter({ storm: { threshold: 3, windowMs: 60_000 } });
    const kinds = ["node-lost", "node-lost", "node-lost", "node-lost", "node-lost", "task-lost", "task-lost", "task-lost", "task-lost"] as const;
    for (const [i, kind] of kinds.entries()) {
      await alerter.raise(event({ key: `storm-${i}`, kind, subject: `${kind} ${i}`, recipients: { email: ["ops@example.com"], sms: [] } }));
    }
    await alerter.idle();
    assert.equal(mails.length, 3);
    clock.advance(60_000);
    await alerter.idle();
    assert.equal(mails.length, 4);
    const summary = mails[3]!;
    assert.equal(summary.headers.get("subject"), "[torca CRITICAL] 6 more alerts (4 task-lost, 2 node-lost)");
    assert.match(summary.text, /^6 more alerts in the last minute: 4 task-lost, 2 node-lost/);
    assert.match(summary.text, /- node-lost 3\r?\n- node-lost 4\r?\n- task-lost 5/);
    await alerter.close();
  });

  it("retries a gateway that fails twice, then succeeds, recording every attempt", async () => {
    reset();
    smsFailuresLeft = 2;
    const { alerter, clock } = makeAlerter();
    await alerter.raise(event({ key: "flaky", recipients: { email: [], sms: ["+15550100"] } }));
    await alerter.idle();
    let [rec] = await alerter.history(1);
    assert.equal(rec!.status, "retrying");
    assert.equal(rec!.attempts, 1);
    assert.match(rec!.lastError ?? "", /503/);
    assert.equal(rec!.nextAttemptAt, T0 + 2000);

    clock.advance(2000);
    await alerter.idle();
    [rec] = await alerter.history(1);
    assert.equal(rec!.status, "retrying");
    assert.equal(rec!.attempts, 2);
    assert.equal(rec!.nextAttemptAt, T0 + 2000 + 4000);

    clock.advance(4000);
    await alerter.idle();
    [rec] = await alerter.history(1);
    assert.equal(rec!.status, "sent");
    assert.equal(rec!.attempts, 3);
    assert.equal(smsRequests.length, 3);
    assert.ok(smsRequests.every((r) => r.body === smsRequests[0]!.body), "the same message each time");
    await alerter.close();
  });

  it("records SMTP failures for retry when the mail server is down", async () => {
    reset();
    const clock = new ManualClock(T0);
    // A port nothing listens on: take one from a server and close it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const alerter = new Alerter({
      ledger: new MemoryAlertLedger(),
      notifiers: [new EmailNotifier({ host: "127.0.0.1", port: deadPort, secure: false, from: "torca@example.com", timeoutMs: 2000 })],
      clock,
      retry: { attempts: 2, initialDelayMs: 1000, factor: 2, maxDelayMs: 1000 },
    });
    await alerter.raise(event({ key: "smtp-down", recipients: { email: ["ops@example.com"], sms: [] } }));
    await alerter.idle();
    clock.advance(1000);
    await alerter.idle();
    const [rec] = await alerter.history(1);
    assert.equal(rec!.status, "failed");
    assert.equal(rec!.attempts, 2);
    assert.match(rec!.lastError ?? "", /ECONNREFUSED|connect/i);
    await alerter.close();
  });
});
