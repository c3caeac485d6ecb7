import { runTorca } from "../harness/cli.js";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { SMTPServer } from "smtp-server";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import type { DeliveryRecord } from "../../src/alerting/types.js";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { eventually, never, until } from "../harness/wait.js";

/**
 * Alerting through real managers: a job's `notify` reaches a real SMTP server
 * and an HTTP SMS gateway on 127.0.0.1, once per incident, also when the
 * primary is SIGKILLed in the middle of one.
 *
 * Three agents: a failing task with `restart.attempts: 0` is migrated to
 * another node twice before it is `failed` (MAX_MIGRATIONS), each migration
 * avoiding every node the task failed on, so the alert follows the real path.
 */

interface Mail {
  rcpt: string[];
  raw: string;
}



const OPS = "ops@example.com";
const ONCALL = "oncall@example.com";
const PHONE = "+15550100";

const skip = zookeeperInstalled() ? false : "ZooKeeper is not installed";

describe("alerting: job notify to SMTP and SMS, exactly once across a primary SIGKILL", { skip, timeout: 300_000 }, () => {
  let tc: TestCell;
  let smtp: SMTPServer;
  let gateway: Server;
  const mails: Mail[] = [];
  const sms: { to: string; text: string }[] = [];
  /** While set, the next RCPT for OPS runs it (to kill the primary mid-delivery) and is refused. */
  let onOpsRcpt: (() => void) | undefined;
  /** While true the gateway holds requests unanswered: a held SMS is never accepted. */
  let holdSms = false;
  const held: ServerResponse[] = [];

  before(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onRcptTo(address, _session, callback) {
        const hook = address.address === OPS ? onOpsRcpt : undefined;
        if (hook) {
          onOpsRcpt = undefined;
          hook();
          callback(new Error("451 try again later"));
          return;
        }
        callback();
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          mails.push({ rcpt: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8") });
          callback();
        });
      },
    });
    // A client killed mid-session resets its connection; that is expected here.
    smtp.on("error", () => undefined);
    await new Promise<void>((r) => smtp.listen(0, "127.0.0.1", () => r()));
    const smtpPort = (smtp.server.address() as AddressInfo).port;

    gateway = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        if (holdSms) {
          held.push(res);
          return;
        }
        const msg = JSON.parse(body) as { to: string; text: string };
        sms.push(msg);
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => gateway.listen(0, "127.0.0.1", () => r()));
    const smsPort = (gateway.address() as AddressInfo).port;

    tc = await startTestCell({
      agents: 3,
      managerExtra: {
        alerting: {
          smtp: { host: "127.0.0.1", port: smtpPort, secure: false, from: "Torca <torca@example.com>", timeout: "5s" },
          sms: { url: `http://127.0.0.1:${smsPort}/sms`, timeout: "5s" },
          routes: [{ kinds: ["manager-failover"], email: [ONCALL] }],
          retry: { attempts: 6, initialDelay: "300ms", factor: 2, maxDelay: "2s" },
        },
      },
    });
  });

  after(async () => {
    await tc?.close();
    for (const res of held) res.destroy();
    gateway?.closeAllConnections();
    await new Promise<void>((r) => (gateway ? gateway.close(() => r()) : r()));
    await new Promise<void>((r) => (smtp ? smtp.close(() => r()) : r()));
  });

  const mailsFor = (to: string, needle: string) => mails.filter((m) => m.rcpt.includes(to) && m.raw.includes(needle));
  const smsFor = (needle: string) => sms.filter((m) => m.to === PHONE && m.text.includes(needle));

  /** Waits for deliveries; a timeout shows what the servers received. */
  const delivered = (what: string, pred: () => boolean, timeoutMs = 30_000) =>
    until(what, pred, { timeoutMs, intervalMs: 100, show: () => ({ mails: mails.map((m) => m.rcpt), sms }) });

  async function leader(): Promise<{ id: string; url: string; epoch: number }> {
    return tc.cell.waitForPrimary(60_000);
  }

  async function history(base: string): Promise<DeliveryRecord[]> {
    return (await tc.api.get(`${base}/v1/alerts?limit=200`).json<{ alerts: DeliveryRecord[] }>()).alerts;
  }

  function failingJob(name: string): string {
    return batchJob(name, ["/bin/sh", "-c", "echo boom >&2; exit 1"], `restart: { attempts: 0, delay: 200ms }\nnotify: { email: [${OPS}], sms: ["${PHONE}"], on: [failed] }\n`);
  }

  async function waitFailed(id: string): Promise<void> {
    const j = await tc.waitJob(id, (x) => x.taskList[0]?.state === "failed", 90_000, "task failed");
    // Three attempts on three different nodes: the restart policy migrated it twice.
    assert.equal(j.taskList[0]!.attempt, 3);
  }

  it("a failing job sends exactly one email and one SMS with its id; a later SIGKILL of the primary sends nothing again", async () => {
    const first = await leader();
    assert.equal(first.epoch, 1);
    const { id } = await tc.submit(failingJob("alert-fail-1"));
    await waitFailed(id);
    await delivered("email and SMS for the failure", () => mailsFor(OPS, id).length >= 1 && smsFor(id).length >= 1);

    const mail = mailsFor(OPS, id)[0]!;
    assert.match(mail.raw, new RegExp(`Subject: \\[torca CRITICAL\\] task failed: ${id}/0`));
    assert.match(mail.raw, new RegExp(`/tasks/${id}/0`), "links to the task page");
    const text = smsFor(id)[0]!.text;
    assert.ok(text.length <= 160, text);

    // The ledger says sent, on the primary and on the backup alike.
    const key = `task-failed:${id}/0:3`;
    for (const base of tc.cell.managerUrls) {
      // The "sent" update is written just after the server accepted the message.
      await eventually(`history on ${base}`, async () => {
        const shown = (await history(base)).filter((r) => r.key === key).map((r) => `${r.channel}:${r.to}:${r.status}`).sort();
        assert.deepEqual(shown, [`email:${OPS}:sent`, `sms:${PHONE}:sent`]);
      });
    }

    // `torca alerts` shows the same history, from any manager.
    const cli = await runTorca(["alerts"], { TORCA_MANAGER: tc.cell.managerUrls.join(","), TORCA_TOKEN: tc.cell.token });
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`task-failed\\s+email:${OPS}\\s+sent\\s+1\\s+\\[torca CRITICAL\\] task failed: ${id}/0`));
    assert.match(cli.stdout, new RegExp(`sms:\\${PHONE}\\s+sent`));

    // Kill the primary after the incident: the next one must not alert it again.
    await tc.cell.stopDaemon(first.id, "SIGKILL");
    const second = await leader();
    assert.notEqual(second.id, first.id);
    assert.equal(second.epoch, 2);
    await delivered("failover alert", () => mailsFor(ONCALL, "epoch 2").length >= 1);
    // The new primary has read the ledger and runs its alert loop: it must not deliver the incident again.
    await never("a second delivery of the incident or of the failover alert", () => mailsFor(OPS, id).length > 1 || smsFor(id).length > 1 || mailsFor(ONCALL, "epoch 2").length > 1, 4000);
    assert.equal(mailsFor(OPS, id).length, 1, "one email for the incident");
    assert.equal(smsFor(id).length, 1, "one SMS for the incident");
    assert.equal(mailsFor(ONCALL, "epoch 2").length, 1, "one failover alert");
  });

  it("exactly one alert when the primary is SIGKILLed after claiming the incident, mid-delivery", async () => {
    // Its own starting point: the manager the previous case killed runs again, as a backup.
    const { primary: current } = await tc.steadyPrimary(60_000);
    const victim = tc.cell.daemons.get(current.id)!.process!;
    let killed = false;
    holdSms = true;
    onOpsRcpt = () => {
      // The primary has claimed the incident and is talking to the SMTP server: kill it now.
      killed = victim.kill("SIGKILL");
    };
    const { id } = await tc.submit(failingJob("alert-fail-2"));
    await delivered("the primary reached the SMTP server", () => killed, 90_000);
    await new Promise<void>((r) => (victim.exitCode !== null || victim.signalCode !== null ? r() : victim.once("exit", () => r())));
    // Whatever the dead primary had sent to the gateway was never accepted.
    holdSms = false;
    for (const res of held.splice(0)) res.destroy();
    assert.equal(mailsFor(OPS, id).length, 0);
    assert.equal(smsFor(id).length, 0);

    const next = await leader();
    assert.notEqual(next.id, current.id);
    assert.equal(next.epoch, current.epoch + 1);
    await delivered("the new primary delivers the claimed incident", () => mailsFor(OPS, id).length >= 1 && smsFor(id).length >= 1, 60_000);
    await waitFailed(id);
    await never("a second delivery of the incident", () => mailsFor(OPS, id).length > 1 || smsFor(id).length > 1, 5000);
    assert.equal(mailsFor(OPS, id).length, 1, "one email for the incident");
    assert.equal(smsFor(id).length, 1, "one SMS for the incident");

    const recs = await eventually("one record per recipient, delivered by the new primary", async () => {
      const r = (await history(next.url)).filter((x) => x.key.startsWith(`task-failed:${id}/0:`));
      assert.deepEqual(r.map((x) => `${x.channel}:${x.status}`).sort(), ["email:sent", "sms:sent"]);
      return r;
    });
    assert.ok(recs.every((r) => r.id.includes(`-e${current.epoch}`)), "the records are the dead primary's, resumed rather than re-raised");
    assert.equal(mailsFor(ONCALL, `epoch ${next.epoch}`).length, 1);
  });
});
