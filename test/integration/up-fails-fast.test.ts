import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { runTorca } from "../harness/cli.js";

/**
 * `torca up` with a daemon that cannot start: it says which daemon and why
 * (the daemon's own error) as soon as the daemon exits, instead of waiting out
 * the election timeout, and leaves no process behind.
 */

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "torca-up-fails-"));
});
after(async () => {
  for (const pid of processesUsing(dir)) process.kill(pid, "SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

/** PIDs of live processes whose command line names `path` (the cell's daemons and ZooKeeper do). */
function processesUsing(path: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(path)) out.push(pid);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

describe("torca up with a daemon that exits during start-up", { skip: !zookeeperInstalled() && "ZooKeeper is not installed" }, () => {
  it("prints the daemon's own error within seconds and stops the rest of the cell", async () => {
    const cellDir = join(dir, "cell");
    const startedAt = Date.now();
    const r = await runTorca(["up", "--dir", cellDir, "--driver", "process"], { TORCA_MANAGER_RETENTION: "{terminal: 5s, bogus: 1}" }, 90_000);
    const seconds = (Date.now() - startedAt) / 1000;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    // Every daemon reads the whole config, so whichever exits first is reported (managers and agents alike).
    assert.match(r.stderr, /(manager|agent)-\d exited during start-up \(exit code \d+\): .*manager\.retention: unknown key "bogus"/);
    assert.match(r.stderr, /its log: .*(manager|agent)-\d\.log/);
    assert.doesNotMatch(r.stderr, /no primary elected/);
    // ZooKeeper's own start-up takes a few seconds of this; the election timeout is 60 s.
    assert.ok(seconds < 30, `took ${seconds.toFixed(1)} s`);
    assert.deepEqual(processesUsing(cellDir), [], "no daemon of the cell is left running");
  });
});
