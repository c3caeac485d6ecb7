/**
 * Allocs in a real cell (process driver, cgroup v1, root only): an alloc of
 * three tasks shares its memory limit, one task holds more than a third of it
 * while the others idle and keeps running, and the task pushing the alloc past
 * its limit is OOM-killed and reported as such, not the others; the alloc's
 * parent cgroup has the limit, its children none. docs/allocs.md.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MemberHandle } from "../../agent/driver/driver.js";
import { startTestCell, type TestCell } from "../harness/cell.js";
import { ALLOC_MEMBERS_MIB, holdMember, idleMember, pushMember } from "../harness/alloc-members.js";
import { runTorca } from "../harness/cli.js";
import { until } from "../harness/wait.js";

const isRoot = process.getuid?.() === 0;
const MiB = 1024 ** 2;

async function cgroupFile(controller: string, cgroup: string, file: string): Promise<string> {
  return (await readFile(`/sys/fs/cgroup/${controller}/torca/${cgroup}/${file}`, "utf8")).trim();
}

describe("allocs: members share the alloc's limits", { skip: isRoot ? false : "needs root for cgroups" }, () => {
  let c: TestCell;
  let cli: (args: string[]) => ReturnType<typeof runTorca>;
  before(async () => {
    c = await startTestCell({ managers: 1, agents: 1 });
    cli = (args) => runTorca(args, { TORCA_MANAGER: c.cell.managerUrls.join(","), TORCA_TOKEN: c.cell.token });
  });
  after(async () => {
    await c?.close();
  });

  test("one task holds more than a third while the others idle; the task pushing past the limit is the one OOM-killed", async () => {
    const members = [holdMember("big"), idleMember("idle"), pushMember("pusher")].map(({ name, command }) => ({ name, command }));
    const job = { name: "shared", type: "batch", restart: { attempts: 0 }, alloc: { resources: { cpu: 0.5, memory: `${ALLOC_MEMBERS_MIB.alloc}MiB` }, tasks: members } };
    await c.submit(JSON.stringify(job));
    await c.waitJob("shared", (j) => j.taskList[0]?.members?.length === 3 && j.taskList[0].members.every((m) => m.state === "running"), 60_000, "every member running");

    const agentUrl = c.cell.daemons.get("agent-1")!.url;
    const rec = await c.api.get(`${agentUrl}/v1/tasks/${encodeURIComponent("shared/0")}`).json<{ dir: string; handle: { cgroup: string; members: MemberHandle[] } }>();
    assert.equal(await cgroupFile("memory", rec.handle.cgroup, "memory.limit_in_bytes"), String(ALLOC_MEMBERS_MIB.alloc * MiB), "the alloc's parent cgroup has its limit");
    for (const m of rec.handle.members) {
      assert.equal(m.cgroup, `${rec.handle.cgroup}/${m.name}`, "each member's cgroup is a child of the alloc's");
      assert.ok(Number(await cgroupFile("memory", m.cgroup!, "memory.limit_in_bytes")) > 2 ** 60, `member ${m.name}'s child cgroup has no limit of its own`);
    }

    await until("big holds its memory (torca logs --member big)", async () => (await cli(["logs", "shared/0", "--member", "big"])).stdout.includes("held"), { timeoutMs: 60_000, intervalMs: 500 });
    const held = Number(await cgroupFile("memory", rec.handle.cgroup, "memory.usage_in_bytes"));
    assert.ok(held > (ALLOC_MEMBERS_MIB.alloc * MiB) / 3, `the alloc holds ${held} bytes, more than a third of its limit`);
    const bigAlone = Number(await cgroupFile("memory", `${rec.handle.cgroup}/big`, "memory.usage_in_bytes"));
    assert.ok(bigAlone > (ALLOC_MEMBERS_MIB.alloc * MiB) / 3, `big alone holds ${bigAlone} bytes`);
    const running = await cli(["status", "shared/0"]);
    assert.equal(running.code, 0, running.stderr);
    assert.match(running.stdout, /big\s+running/);
    assert.match(running.stdout, /idle\s+running/);
    assert.match(running.stdout, /pusher\s+running/);
    const noMember = await cli(["logs", "shared/0"]);
    assert.notEqual(noMember.code, 0);
    assert.match(noMember.stderr, /is an alloc: name one of its tasks \(big, idle, pusher\)/);

    await writeFile(join(rec.dir, "work", "push"), "");
    const done = await c.waitJob("shared", (j) => j.taskList[0]?.exit !== undefined && j.taskList[0].members?.every((m) => m.state === "exited") === true, 60_000, "the alloc exited");
    const t = done.taskList[0]!;
    assert.equal(t.exit!.oomKilled, true, JSON.stringify(t.exit));
    assert.equal(t.exit!.reason, "task pusher: oom-killed");
    const byName = Object.fromEntries(t.members!.map((m) => [m.name, m.exit!]));
    assert.equal(byName.pusher!.oomKilled, true, JSON.stringify(t.members));
    assert.equal(byName.big!.oomKilled, false, JSON.stringify(t.members));
    assert.equal(byName.idle!.oomKilled, false, JSON.stringify(t.members));
    assert.match(byName.big!.reason, /^stopped after task pusher failed/);
    assert.ok(t.events.some((e) => e.type === "member-oom-killed" && e.message === "task pusher: oom-killed"), JSON.stringify(t.events));
    assert.ok(!t.events.some((e) => e.type === "member-oom-killed" && e.message !== "task pusher: oom-killed"), "no other member is reported OOM-killed");

    const after = await cli(["status", "shared/0"]);
    assert.match(after.stdout, /pusher\s+exited\s+137 \(oom-killed\)/);
    assert.doesNotMatch(after.stdout, /(big|idle)\s+exited\s+\S+ \(oom-killed\)/);
    const page = await c.api.get(`${await c.primaryUrl()}/tasks/shared/0`, { headers: { cookie: `torca_session=${encodeURIComponent(c.cell.token)}` } }).text();
    assert.match(page, /<tr data-member="pusher">.*oom-killed/);
  });
});
