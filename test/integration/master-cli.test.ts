import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { runTorca, TORCA_BIN } from "../harness/cli.js";
import { loadConfig } from "../../src/common/config.js";
import type { MasterStatusReading } from "../../src/master/status.js";
import { until } from "../harness/wait.js";
import { pidAlive } from "../../src/common/process.js";

/**
 * `torca master --config host.yaml` as a real process supervising a real
 * daemon, and `torca master status` reading what it writes.
 */

const ROOT = resolve(new URL("../../..", import.meta.url).pathname);


describe("torca master", { timeout: 120_000 }, () => {
  let dir: string;
  let master: ChildProcess | undefined;
  const daemonPids = new Set<number>();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "torca-master-cli-"));
  });

  after(async () => {
    // Only what this test started: the master (by its PID), then any daemon PID it reported that is still alive.
    if (master && master.exitCode === null && master.signalCode === null) {
      const exited = new Promise<void>((r) => master!.once("exit", () => r()));
      master.kill("SIGKILL");
      await exited;
    }
    for (const pid of daemonPids) if (pidAlive(pid)) process.kill(pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  async function status(): Promise<MasterStatusReading> {
    const r = await runTorca(["--json", "master", "status", "--dir", join(dir, "state")]);
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    return JSON.parse(r.stdout) as MasterStatusReading;
  }

  async function waitStatus(what: string, pred: (s: MasterStatusReading) => boolean, timeoutMs = 20_000): Promise<MasterStatusReading> {
    // A probe that throws (the status file not written yet) counts as "not yet".
    return until(
      what,
      async () => {
        const s = await status();
        for (const d of s.daemons) if (d.pid !== undefined) daemonPids.add(d.pid);
        return pred(s) && s;
      },
      { timeoutMs, intervalMs: 150 },
    );
  }

  it("the example configs load", () => {
    for (const f of ["host.yaml", "manager.yaml", "agent.yaml"]) loadConfig(join(ROOT, "config", "examples", f), {});
    const host = loadConfig(join(ROOT, "config", "examples", "host.yaml"), {}).config.master;
    assert.deepEqual(host.daemons.map((d) => d.name), ["manager", "agent"]);
    assert.equal(host.daemons[0]!.cwd, ROOT, "cwd is resolved against the config file's directory");
    assert.equal(host.backoff.initial, 1000);
    const mgr = loadConfig(join(ROOT, "config", "examples", "manager.yaml"), {}).config.manager.alerting;
    assert.equal(mgr.retry.initialDelay, 5000);
  });

  it("refuses bad master configs with exit code 2", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "master:\n  daemons:\n    - { name: a, command: [x] }\n    - { name: a, command: [y] }\n");
    const dup = await runTorca(["master", "--config", bad]);
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /master\.daemons: daemon names must be unique/);
    writeFileSync(bad, "master:\n  daemons: []\n");
    const none = await runTorca(["master", "--config", bad]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /lists no daemons/);
  });

  it("restarts a SIGKILLed daemon, shows it in `master status`, and stops everything on SIGTERM", async () => {
    const cfg = join(dir, "host.yaml");
    writeFileSync(
      cfg,
      [
        "master:",
        "  statusDir: state",
        "  statusInterval: 500ms",
        "  backoff: { initial: 200ms, factor: 2, max: 2s }",
        "  stopGrace: 3s",
        "  daemons:",
        `    - name: worker`,
        `      command: [${JSON.stringify(process.execPath)}, "-e", "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000)"]`,
        `    - name: stubborn`,
        // Ignores SIGTERM: the master must SIGKILL it after stopGrace.
        `      command: [${JSON.stringify(process.execPath)}, "-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"]`,
        "",
      ].join("\n"),
    );
    master = spawn(process.execPath, [TORCA_BIN, "master", "--config", cfg], { stdio: ["ignore", "ignore", "ignore"], env: { ...process.env, NODE_TEST_CONTEXT: undefined, TORCA_LOG_LEVEL: "warn" } });
    const masterExited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => master!.once("exit", (code, signal) => r({ code, signal })));

    const up = await waitStatus("both daemons running", (s) => s.running && s.daemons.length === 2 && s.daemons.every((d) => d.state === "running" && d.pid !== undefined));
    assert.equal(up.pid, master.pid);
    const worker = up.daemons.find((d) => d.name === "worker")!;
    const firstPid = worker.pid!;

    process.kill(firstPid, "SIGKILL");
    const restarted = await waitStatus("worker restarted", (s) => {
      const w = s.daemons.find((d) => d.name === "worker");
      return w?.state === "running" && w.pid !== undefined && w.pid !== firstPid && w.restarts === 1;
    });
    const w = restarted.daemons.find((d) => d.name === "worker")!;
    assert.equal(w.lastExit?.signal, "SIGKILL");
    assert.ok(!pidAlive(firstPid));

    const human = await runTorca(["master", "status", "--dir", join(dir, "state")]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`master pid ${master.pid}: running`));
    assert.match(human.stdout, new RegExp(`worker\\s+running\\s+pid ${w.pid}\\s+restarts 1 .*last exit signal SIGKILL`));
    assert.match(human.stdout, /stubborn\s+running/);

    const pids = restarted.daemons.map((d) => d.pid!);
    const t0 = Date.now();
    master.kill("SIGTERM");
    const exit = await masterExited;
    assert.equal(exit.code, 0);
    assert.ok(Date.now() - t0 >= 2500, "the stubborn daemon was given its grace period before SIGKILL");
    for (const pid of pids) assert.ok(!pidAlive(pid), `daemon ${pid} is gone`);

    const after = await runTorca(["--json", "master", "status", "--dir", join(dir, "state")]);
    assert.equal(after.code, 1, "a stopped master is reported with exit code 1");
    const final = JSON.parse(after.stdout) as MasterStatusReading;
    assert.equal(final.state, "stopped");
    assert.equal(final.running, false);
    assert.ok(final.daemons.every((d) => d.state === "stopped"));
    assert.deepEqual(readdirSync(join(dir, "state")).sort(), ["master-daemons.json", "master-status.json"], "no temporary files left");
  });

  it("alerts through the configured SMS gateway when a daemon keeps crashing", async () => {
    const { createServer } = await import("node:http");
    const received: string[] = [];
    const gateway = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        received.push(body);
        res.end("ok");
      });
    });
    await new Promise<void>((r) => gateway.listen(0, "127.0.0.1", () => r()));
    const port = (gateway.address() as { port: number }).port;
    const cfg = join(dir, "crashloop.yaml");
    writeFileSync(
      cfg,
      [
        "manager:",
        "  alerting:",
        `    sms: { url: "http://127.0.0.1:${port}/send" }`,
        "    routes: [{ kinds: [daemon-crashloop], sms: ['+15550100'] }]",
        "master:",
        `  statusDir: ${join(dir, "crash-state")}`,
        "  backoff: { initial: 50ms, factor: 1, max: 50ms }",
        "  crashLoop: { exits: 3, window: 1m }",
        "  daemons:",
        "    - { name: flapper, command: [/bin/sh, -c, 'exit 3'] }",
        "",
      ].join("\n"),
    );
    const m = spawn(process.execPath, [TORCA_BIN, "master", "--config", cfg], { stdio: "ignore", env: { ...process.env, NODE_TEST_CONTEXT: undefined } });
    try {
      await until("a crash-loop alert", () => received.length > 0, { timeoutMs: 20_000, intervalMs: 100 });
      assert.equal(received.length, 1, "one crash-loop alert");
      assert.match(received[0]!, /flapper/);
      assert.match(received[0]!, /\+15550100/);
    } finally {
      const exited = new Promise<void>((r) => m.once("exit", () => r()));
      m.kill("SIGTERM");
      await exited;
      gateway.close();
    }
  });
});
