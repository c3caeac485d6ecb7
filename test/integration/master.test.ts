import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { readMasterStatus } from "../../src/master/status.js";
import { Supervisor, type DaemonStatus, type ExitRecord } from "../../src/master/supervisor.js";
import { until } from "../harness/wait.js";
import { pidAlive } from "../../src/common/process.js";

/** Real child processes (`node -e`), short backoffs; every wait is bounded. */

const NODE = process.execPath;
let dir = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "torca-master-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A daemon that stays up, writes `ready` once its SIGTERM handling is in place. */
function longRunning(readyFile: string, onTerm: "exit" | "ignore"): string[] {
  const handler = onTerm === "exit" ? "process.exit(0)" : "undefined";
  return [NODE, "-e", `process.on("SIGTERM", () => ${handler}); require("fs").writeFileSync(${JSON.stringify(readyFile)}, String(process.pid)); setInterval(() => {}, 1000);`];
}

function byName(s: Supervisor, name: string): DaemonStatus {
  const d = s.status().find((x) => x.name === name);
  assert.ok(d, `daemon ${name}`);
  return d;
}

describe("master supervisor with real processes", () => {
  it("restarts a daemon killed with SIGKILL (new pid)", async () => {
    const ready = join(dir, "a.ready");
    const sup = new Supervisor({ daemons: [{ name: "a", command: longRunning(ready, "exit") }], backoff: { initialMs: 50 }, stdio: "ignore", stopGraceMs: 2000 });
    sup.start();
    try {
      const pid1 = await until("first start", () => existsSync(ready) && byName(sup, "a").pid);
      assert.equal(byName(sup, "a").state, "running");
      process.kill(pid1, "SIGKILL");
      const pid2 = await until("restart", () => {
        const d = byName(sup, "a");
        return d.state === "running" && d.pid !== undefined && d.pid !== pid1 && d.pid;
      });
      assert.notEqual(pid2, pid1);
      assert.equal(pidAlive(pid1), false);
      const d = byName(sup, "a");
      assert.equal(d.restarts, 1);
      assert.equal(d.lastExit?.signal, "SIGKILL");
      assert.equal(d.crashLooping, false);
    } finally {
      await sup.stop();
    }
    assert.equal(byName(sup, "a").state, "stopped");
  });

  it("backs off a crash-looping daemon exponentially and reports the loop once", async () => {
    const loops: { name: string; exits: ExitRecord[] }[] = [];
    const delays: number[] = [];
    let sup: Supervisor | undefined = undefined;
    sup = new Supervisor(
      { daemons: [{ name: "crashy", command: [NODE, "-e", "process.exit(3)"] }], backoff: { initialMs: 25, factor: 2, maxMs: 200 }, crashLoop: { exits: 3, windowMs: 60_000 }, stdio: "ignore" },
      {
        onCrashLoop: (name, exits) => loops.push({ name, exits }),
        onChange: () => {
          const d = sup?.status()[0];
          if (d?.state === "backoff" && d.nextStartAt !== undefined && d.lastExit) delays.push(d.nextStartAt - d.lastExit.at);
        },
      },
    );
    sup.start();
    try {
      await until("six exits", () => delays.length >= 6, { timeoutMs: 15_000 });
    } finally {
      await sup.stop();
    }
    assert.deepEqual(delays.slice(0, 6), [25, 50, 100, 200, 200, 200]);
    assert.equal(loops.length, 1, "reported once per episode");
    assert.equal(loops[0]!.name, "crashy");
    assert.equal(loops[0]!.exits.length, 4);
    assert.ok(loops[0]!.exits.every((e) => e.code === 3 && e.signal === null));
    const d = sup.status()[0]!;
    assert.equal(d.crashLooping, true);
    assert.equal(d.state, "stopped");
    assert.ok(d.restarts >= 5);
  });

  it("starts the backoff over after a run that lasted the stable period", async () => {
    const delays: number[] = [];
    const uptimes: number[] = [];
    let sup: Supervisor | undefined = undefined;
    sup = new Supervisor(
      { daemons: [{ name: "flappy", command: [NODE, "-e", "setTimeout(() => process.exit(1), 150)"] }], backoff: { initialMs: 25, factor: 2 }, stableMs: 100, stdio: "ignore" },
      {
        onChange: () => {
          const d = sup?.status()[0];
          if (d?.state === "backoff" && d.nextStartAt !== undefined && d.lastExit) {
            delays.push(d.nextStartAt - d.lastExit.at);
            uptimes.push(d.lastExit.uptimeMs);
          }
        },
      },
    );
    sup.start();
    try {
      await until("three exits", () => delays.length >= 3, { timeoutMs: 15_000 });
    } finally {
      await sup.stop();
    }
    assert.deepEqual(delays.slice(0, 3), [25, 25, 25]);
    // The exits the backoff restarted from (not the one stop() caused): each run lasted the stable period.
    assert.ok(uptimes.slice(0, 3).every((u) => u >= 100), `uptimes ${uptimes.join(", ")} ms`);
  });

  it("records a command that cannot be spawned and keeps retrying it", async () => {
    const sup = new Supervisor({ daemons: [{ name: "missing", command: [join(dir, "no-such-binary")] }], backoff: { initialMs: 20 }, stdio: "ignore" });
    sup.start();
    try {
      const exit = await until("a spawn failure", () => byName(sup, "missing").lastExit);
      assert.match(exit.error ?? "", /ENOENT/);
      await until("a second attempt", () => byName(sup, "missing").restarts >= 1);
    } finally {
      await sup.stop();
    }
  });

  it("SIGTERM to the master stops every child: graceful ones at once, stubborn ones by SIGKILL after the grace", async () => {
    const statusDir = join(dir, "status");
    const readyA = join(dir, "m-a.ready");
    const readyB = join(dir, "m-b.ready");
    const masterModule = join(dirname(fileURLToPath(import.meta.url)), "../../src/master/master.js");
    const config = {
      statusDir,
      statusIntervalMs: 200,
      stdio: "ignore",
      stopGraceMs: 500,
      daemons: [
        { name: "graceful", command: longRunning(readyA, "exit") },
        { name: "stubborn", command: longRunning(readyB, "ignore") },
      ],
    };
    const script = `import { runMaster } from ${JSON.stringify(masterModule)}; runMaster(${JSON.stringify(config)}, { handleSignals: true }).done.then(() => process.exit(0));`;
    const master = spawn(NODE, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, TORCA_LOG_LEVEL: "silent" } });
    let stderr = "";
    master.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const masterExit = new Promise<number | null>((r) => master.once("exit", (code) => r(code)));
    try {
      await until("both daemons ready", () => existsSync(readyA) && existsSync(readyB));
      const status = await until("status file with both pids", async () => {
        const s = await readMasterStatus(statusDir);
        return s && s.daemons.every((d) => d.pid !== undefined && d.state === "running") ? s : undefined;
      });
      assert.equal(status.pid, master.pid);
      assert.equal(status.running, true);
      const pids = status.daemons.map((d) => d.pid!);
      assert.deepEqual(pids.sort(), [Number(await readFile(readyA, "utf8")), Number(await readFile(readyB, "utf8"))].sort());

      const t0 = Date.now();
      master.kill("SIGTERM");
      // Stop is bounded: the master exits by itself, the stubborn daemon SIGKILLed once its grace ran out.
      let exited: { code: number | null } | undefined;
      void masterExit.then((code) => (exited = { code }));
      const { code } = await until("the master to exit after SIGTERM", () => exited, { timeoutMs: 30_000 });
      assert.equal(code, 0, stderr);
      // A lower bound only: load can delay the exit, never hasten it.
      const took = Date.now() - t0;
      assert.ok(took >= 450, `stubborn daemon waited for the grace period (${took} ms)`);
      for (const pid of pids) assert.equal(pidAlive(pid), false, `daemon ${pid} is gone`);

      const final = await readMasterStatus(statusDir);
      assert.ok(final);
      assert.equal(final.state, "stopped");
      assert.equal(final.running, false);
      const stubborn = final.daemons.find((d) => d.name === "stubborn")!;
      const graceful = final.daemons.find((d) => d.name === "graceful")!;
      assert.equal(stubborn.lastExit?.signal, "SIGKILL");
      assert.equal(graceful.lastExit?.code, 0);
      assert.ok(final.daemons.every((d) => d.state === "stopped" && d.pid === undefined));
    } finally {
      if (master.exitCode === null && master.signalCode === null) master.kill("SIGKILL");
    }
  });
});
