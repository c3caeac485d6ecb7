/**
 * torca exec: a command runs beside a running task in the task's own context
 * (its user, working directory, environment and cgroup), its streams and exit
 * status come back to the CLI, a terminal is allocated on request, the exec is
 * recorded on the task, and only callers who may submit in the task's
 * namespace get in.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TaskInstance } from "../../src/common/types.js";
import { startTestCell, type TestCell } from "../harness/cell.js";
import { runTorca } from "../harness/cli.js";

describe("torca exec", () => {
  let tc: TestCell;
  let env: Record<string, string>;

  before(async () => {
    tc = await startTestCell({ managers: 2, agents: 1 });
    env = { TORCA_MANAGER: tc.cell.managerUrls.join(","), TORCA_TOKEN: tc.cell.token };
    const r = await tc.submit("name: shell\ntype: service\nisolation: process\ncommand: [/bin/sleep, '613']\nenv: { GREETING: hello }\nresources: { cpu: 0.1, memory: 64MiB }\n");
    await tc.waitJob(r.id, (j) => j.taskList[0]?.state === "running", 30_000, "the service running");
    await tc.submit("name: finished\ntype: batch\nisolation: process\ncommand: [/bin/true]\nresources: { cpu: 0.1, memory: 16MiB }\n");
    await tc.waitJob("finished", (j) => j.taskList[0]?.state === "completed", 30_000, "the batch task completed");
  });

  after(async () => {
    await tc?.close();
  });

  it("runs as the task's user, in its directory, cgroup and environment, and exits with the command's status", async () => {
    const script = [
      "id -u",
      "stat -c %u .",
      "echo $GREETING $TORCA_TASK",
      // The task's own process (each task has its own uid) and the exec'd shell share the task's memory cgroup.
      'mine=$(grep -E "^[0-9]+:memory:" /proc/self/cgroup)',
      'theirs=$(grep -E "^[0-9]+:memory:" /proc/$(pgrep -u "$(id -u)" -fx "/bin/sleep 613")/cgroup)',
      'case "$mine" in *:/torca/*) [ "$mine" = "$theirs" ] && echo same-cgroup;; *) echo "not in a task cgroup: $mine";; esac',
      "echo to-stderr >&2",
      "exit 7",
    ].join("; ");
    const r = await runTorca(["exec", "shell/0", "--", "/bin/sh", "-c", script], env);
    assert.equal(r.code, 7, r.stderr);
    const [uid, owner, greeting, cgroup] = r.stdout.trim().split("\n");
    assert.notEqual(uid, "0", "not root");
    assert.equal(uid, owner, "the task's user, who owns its work dir (the cwd)");
    assert.equal(greeting, "hello shell/0");
    assert.equal(cgroup, "same-cgroup", `in the cgroup of the task's own process: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, /to-stderr/);
  });

  it("passes stdin through and ends it", async () => {
    const r = await runTorca(["exec", "shell/0", "--", "cat"], env, 60_000, "hello from stdin\nsecond line\n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hello from stdin\nsecond line\n");
  });

  it("allocates a terminal with --tty", async () => {
    const r = await runTorca(["exec", "--tty", "shell/0", "--", "/bin/sh", "-c", "tty; exit 3"], { ...env, TERM: "xterm-256color" });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^\/dev\/pts\/\d+\r?$/m);
    const plain = await runTorca(["exec", "shell/0", "--", "/bin/sh", "-c", "tty || true"], env);
    assert.match(plain.stdout, /not a tty/);
  });

  it("records each exec as an event on the task: who, from where, what", async () => {
    const t = await tc.api.get(`${await tc.primaryUrl()}/v1/tasks/${encodeURIComponent("shell/0")}`).json<TaskInstance>();
    const execs = t.events.filter((e) => e.type === "exec");
    assert.ok(execs.length >= 4, `${execs.length} exec events`);
    assert.ok(execs.some((e) => /^cluster from 127\.[\d.]+: \["cat"\]$/.test(e.message)), execs.map((e) => e.message).join(" | "));
    assert.ok(execs.some((e) => e.message.includes("(tty)")));
  });

  it("refuses read-only tokens, other namespaces, tasks that are not running and unknown tasks, with a clear error", async () => {
    const mk = async (name: string, role: string, ns: string) => {
      const r = await runTorca(["--json", "token", "create", "--name", name, "--namespace", ns, "--role", role], env);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { token: string }).token;
    };
    const reader = await runTorca(["exec", "shell/0", "--", "true"], { ...env, TORCA_TOKEN: await mk("exec-reader", "read", "default") });
    assert.notEqual(reader.code, 0);
    assert.match(reader.stderr, /exec-reader.*lacks submit/);
    const other = await runTorca(["exec", "shell/0", "--", "true"], { ...env, TORCA_TOKEN: await mk("exec-other", "submit", "team-b") });
    assert.match(other.stderr, /lacks (read|submit) on namespace "default"/);
    const done = await runTorca(["exec", "finished/0", "--", "true"], env);
    assert.notEqual(done.code, 0);
    assert.match(done.stderr, /finished\/0 is completed; exec needs a running task/);
    const unknown = await runTorca(["exec", "nosuch/0", "--", "true"], env);
    assert.match(unknown.stderr, /nosuch\/0/);
    assert.match(unknown.stderr, /not found|no task/i);
  });
});
