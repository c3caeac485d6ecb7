import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { KvAlertLedger } from "../../src/alerting/ledger.js";
import { processStartTime } from "../../src/common/process.js";
import { FileLedgerKV } from "../../src/master/file-ledger.js";
import { runMaster, type MasterConfig } from "../../src/master/master.js";
import { writeDaemonRecords } from "../../src/master/records.js";
import { readMasterStatus, type MasterStatusReading } from "../../src/master/status.js";
import type { ExitRecord } from "../../src/master/supervisor.js";
import { until } from "../harness/wait.js";

/**
 * A master started again finds the daemons its predecessor left running and
 * supervises them instead of starting them twice; a PID that now names
 * another process is never taken for a daemon; a crash loop alerted before
 * the restart is not alerted again. Real processes, every one ended by PID.
 */

const NODE = process.execPath;
const MASTER_MODULE = join(dirname(fileURLToPath(import.meta.url)), "../../src/master/master.js");
let dir = "";
/** Every process this file started (masters, daemons, stand-ins), for the cleanup. */
const pids = new Set<number>();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "torca-master-adopt-"));
});
after(async () => {
  // Daemons also by the PIDs they logged, in case a failed test lost track of one; each only if it is still ours.
  const logged = readdirSync(dir).filter((f) => f.endsWith(".starts")).flatMap((f) => starts(join(dir, f)));
  for (const pid of new Set([...pids, ...logged])) if (startedHere(pid)) process.kill(pid, "SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

/** Whether `pid` is alive and one of this file's processes (each names the test directory in its command line). */
function startedHere(pid: number): boolean {
  try {
    return processStartTime(pid) !== undefined && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir);
  } catch {
    return false;
  }
}

/** A daemon that appends its PID to `startsFile` each time it starts, and exits on SIGTERM. */
function daemon(startsFile: string): string[] {
  return [NODE, "-e", `process.on("SIGTERM", () => process.exit(0)); require("fs").appendFileSync(${JSON.stringify(startsFile)}, process.pid + "\\n"); setInterval(() => {}, 1000);`];
}

function starts(file: string): number[] {
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).map(Number) : [];
}

/** A master in a process of its own, as `torca master` runs, so that it can be SIGKILLed. */
function startMaster(config: MasterConfig): ChildProcess {
  const script = `import { runMaster } from ${JSON.stringify(MASTER_MODULE)}; runMaster(${JSON.stringify(config)}, { handleSignals: true }).done.then(() => process.exit(0));`;
  const master = spawn(NODE, ["--input-type=module", "-e", script], { stdio: "ignore", env: { ...process.env, TORCA_LOG_LEVEL: "silent" } });
  pids.add(master.pid!);
  return master;
}

async function statusOf(master: ChildProcess, statusDir: string, ready: (s: MasterStatusReading) => boolean): Promise<MasterStatusReading> {
  return until(
    `the status of master ${master.pid}`,
    async () => {
      const s = await readMasterStatus(statusDir);
      return s && s.pid === master.pid && ready(s) ? s : undefined;
    },
    { timeoutMs: 30_000 },
  );
}

const allRunning = (s: MasterStatusReading): boolean => s.daemons.every((d) => d.state === "running" && d.pid !== undefined);
const pidOf = (s: MasterStatusReading, name: string): number => s.daemons.find((d) => d.name === name)!.pid!;

describe("a restarted master", () => {
  it("adopts the daemons its predecessor left running, restarts one that then dies, and stops them all", async () => {
    const statusDir = join(dir, "adopt");
    const startsA = join(dir, "adopt-a.starts");
    const startsB = join(dir, "adopt-b.starts");
    const config: MasterConfig = {
      statusDir,
      statusIntervalMs: 200,
      stdio: "ignore",
      stopGraceMs: 2000,
      adoptedPollMs: 100,
      backoff: { initialMs: 50 },
      daemons: [
        { name: "a", command: daemon(startsA) },
        { name: "b", command: daemon(startsB) },
      ],
    };
    const first = startMaster(config);
    const before = await statusOf(first, statusDir, allRunning);
    await until("both daemons' starts", () => starts(startsA).length === 1 && starts(startsB).length === 1);
    const [a1, b1] = [pidOf(before, "a"), pidOf(before, "b")];
    for (const p of [a1, b1]) pids.add(p);

    const firstGone = new Promise((r) => first.once("exit", r));
    process.kill(first.pid!, "SIGKILL");
    await firstGone;
    assert.ok(processStartTime(a1) !== undefined && processStartTime(b1) !== undefined, "the daemons outlive their master");

    const second = startMaster(config);
    const adopted = await statusOf(second, statusDir, allRunning);
    assert.deepEqual([pidOf(adopted, "a"), pidOf(adopted, "b")], [a1, b1], "the same processes");
    assert.ok(adopted.daemons.every((d) => d.adopted === true));
    assert.deepEqual([starts(startsA), starts(startsB)], [[a1], [b1]], "no daemon started twice");

    // An adopted daemon that dies is noticed (it is not the new master's child) and started again.
    process.kill(a1, "SIGKILL");
    const restarted = await statusOf(second, statusDir, (s) => allRunning(s) && pidOf(s, "a") !== a1);
    const a2 = pidOf(restarted, "a");
    pids.add(a2);
    // The status is written at the spawn, before the new process has run a line.
    await until("a's second start", () => starts(startsA).length === 2);
    assert.deepEqual(starts(startsA), [a1, a2]);
    assert.equal(pidOf(restarted, "b"), b1);
    const a = restarted.daemons.find((d) => d.name === "a")!;
    assert.equal(a.adopted, undefined, "its own child now");
    assert.equal(a.lastExit?.statusUnknown, true);

    // SIGTERM: the master stops its own child and the adopted daemon alike.
    const secondGone = new Promise((r) => second.once("exit", r));
    process.kill(second.pid!, "SIGTERM");
    await secondGone;
    await until("both daemons gone", () => processStartTime(a2) === undefined && processStartTime(b1) === undefined, { timeoutMs: 15_000 });
    const final = await readMasterStatus(statusDir);
    assert.equal(final?.state, "stopped");
  });

  it("replaces a daemon left running whose command changed in the config", async () => {
    const statusDir = join(dir, "changed");
    const oldStarts = join(dir, "changed-old.starts");
    const newStarts = join(dir, "changed-new.starts");
    const base: MasterConfig = { statusDir, stdio: "ignore", adoptedPollMs: 100, stopGraceMs: 2000, daemons: [{ name: "a", command: daemon(oldStarts) }] };
    const first = startMaster(base);
    await statusOf(first, statusDir, allRunning);
    const [old] = await until("the old command's start", () => (starts(oldStarts).length === 1 ? starts(oldStarts) : undefined));
    const firstGone = new Promise((r) => first.once("exit", r));
    process.kill(first.pid!, "SIGKILL");
    await firstGone;

    const second = runMaster({ ...base, daemons: [{ name: "a", command: daemon(newStarts) }] });
    try {
      const [fresh] = await until("the new command's start", () => (starts(newStarts).length === 1 ? starts(newStarts) : undefined));
      assert.notEqual(fresh, old);
      await until("the old process gone", () => processStartTime(old!) === undefined);
      assert.equal(second.supervisor.status()[0]!.pid, fresh);
    } finally {
      await second.stop();
    }
  });

  it("does not adopt, nor signal, a recorded PID now used by an unrelated process", async () => {
    const statusDir = join(dir, "reused");
    const startsA = join(dir, "reused-a.starts");
    const unrelated = spawn(NODE, ["-e", "setInterval(() => {}, 1000)", dir], { stdio: "ignore" });
    pids.add(unrelated.pid!);
    const unrelatedStart = await until("the unrelated process", () => processStartTime(unrelated.pid!));
    const command = daemon(startsA);
    // What a master recorded about a daemon whose PID the kernel has since given to `unrelated`.
    writeDaemonRecords(statusDir, [
      { name: "a", command, pid: unrelated.pid!, pidStartTime: unrelatedStart - 100, startedAt: Date.now() - 60_000, restarts: 0, consecutiveFailures: 0, recentExits: [], crashLoopReported: false },
    ]);
    const master = runMaster({ statusDir, stdio: "ignore", adoptedPollMs: 100, stopGraceMs: 2000, daemons: [{ name: "a", command }] });
    try {
      const d = await until("daemon a started", () => {
        const s = master.supervisor.status()[0]!;
        return s.state === "running" && s.pid !== undefined ? s : undefined;
      });
      pids.add(d.pid!);
      assert.notEqual(d.pid, unrelated.pid);
      assert.equal(d.adopted, undefined);
      await until("a's start", () => starts(startsA).length > 0);
      assert.deepEqual(starts(startsA), [d.pid]);
      assert.equal(d.lastExit?.statusUnknown, true, "the recorded run counts as ended");
    } finally {
      await master.stop();
    }
    assert.equal(processStartTime(unrelated.pid!), unrelatedStart, "the unrelated process was left alone");
    process.kill(unrelated.pid!, "SIGKILL");
  });

  it("does not alert again for a crash loop it alerted before its restart", async () => {
    const statusDir = join(dir, "crashloop");
    const config: MasterConfig = {
      statusDir,
      stdio: "ignore",
      backoff: { initialMs: 20, factor: 1 },
      crashLoop: { exits: 2, windowMs: 60_000 },
      daemons: [{ name: "crashy", command: [NODE, "-e", "process.exit(3)"] }],
    };
    const loops: ExitRecord[][] = [];
    const first = runMaster(config, { onCrashLoop: (_name, exits) => loops.push(exits) });
    await until("a crash loop", () => loops.length === 1 && first.supervisor.status()[0]!.restarts >= 4, { timeoutMs: 20_000 });
    await first.stop();

    const second = runMaster(config, { onCrashLoop: (_name, exits) => loops.push(exits) });
    try {
      const restartsBefore = second.supervisor.status()[0]!.restarts;
      await until("more exits under the new master", () => second.supervisor.status()[0]!.restarts >= restartsBefore + 4, { timeoutMs: 20_000 });
      assert.equal(second.supervisor.status()[0]!.crashLooping, true);
      assert.equal(loops.length, 1, "one alert for the episode, across the master's restart");
    } finally {
      await second.stop();
    }
  });

  it("keeps its alert claims in the status directory: a claimed alert is not sent by the next master", async () => {
    const statusDir = join(dir, "ledger");
    const key = "daemon-crashloop:host-1:agent:1700000000000";
    assert.equal(await new KvAlertLedger(new FileLedgerKV(statusDir), { root: "/" }).claim(key), true);
    assert.equal(await new KvAlertLedger(new FileLedgerKV(statusDir), { root: "/" }).claim(key), false);
    assert.equal(await new KvAlertLedger(new FileLedgerKV(statusDir), { root: "/" }).claim(`${key}1`), true);
  });
});
