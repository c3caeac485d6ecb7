import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { parseExposition, promtool, total, type Sample } from "../harness/metrics.js";
import { eventually } from "../harness/wait.js";

/**
 * The metrics of a real cell (two managers, one agent) after jobs ran: every
 * exposition passes `promtool check metrics`, the primary's histograms and
 * counters have samples, the backup serves the same families, and the agent
 * serves its own at its own address, with the running task's usage.
 */

const MANAGER_FAMILIES = [
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "nodejs_eventloop_lag_seconds",
  "nodejs_heap_size_used_bytes",
  "torca_manager_is_primary",
  "torca_jobs",
  "torca_tasks",
  "torca_nodes",
  "torca_placement_duration_seconds",
  "torca_submit_to_running_seconds",
  "torca_dispatch_duration_seconds",
  "torca_http_request_duration_seconds",
  "torca_zookeeper_operation_duration_seconds",
  "torca_placements_total",
  "torca_preemptions_total",
  "torca_restarts_total",
  "torca_migrations_total",
  "torca_dispatch_failures_total",
  "torca_alerts_sent_total",
  "torca_alerts_failed_total",
  "torca_fencing_events_total",
];

const AGENT_FAMILIES = [
  "process_cpu_seconds_total",
  "torca_agent_tasks_running",
  "torca_agent_task_launches_total",
  "torca_agent_launch_duration_seconds",
  "torca_agent_package_pulls_total",
  "torca_agent_task_cpu_seconds_total",
  "torca_agent_task_memory_bytes",
  "torca_agent_task_pids",
  "torca_http_request_duration_seconds",
];

describe("metrics of a running cell", { timeout: 240_000 }, () => {
  let tc: TestCell;
  let primary: string;
  let backup: string;
  let agent: string;
  /** Where the flaky job leaves its mark (open to the task's uid). */
  const markDir = mkdtempSync(join(tmpdir(), "torca-metrics-"));
  const scrape = async (url: string) => {
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${tc.cell.token}` } });
    assert.equal(res.status, 200, `${url}/metrics`);
    return res.text();
  };

  before(async () => {
    tc = await startTestCell({ managers: 2, agents: 1 });
    const steady = await tc.steadyPrimary();
    primary = steady.primary.url;
    backup = [...tc.cell.daemons.values()].find((d) => d.kind === "manager" && d.url !== primary)!.url;
    agent = [...tc.cell.daemons.values()].find((d) => d.kind === "agent")!.url;
    const done = await tc.submit(batchJob("quick", ["/bin/true"]));
    await tc.waitJob(done.id, (j) => j.status === "complete", 60_000, "complete");
    // Exits 1 once, then succeeds: one restart in place.
    chmodSync(markDir, 0o777);
    const mark = join(markDir, "ran");
    const flaky = await tc.submit(batchJob("flaky", ["/bin/sh", "-c", `test -f ${mark} && exit 0; touch ${mark}; exit 1`], "restart: { attempts: 2, delay: 200ms }\n"));
    await tc.waitJob(flaky.id, (j) => j.status === "complete", 60_000, "complete after a restart");
    const service = await tc.submit(batchJob("sleeper", ["/bin/sleep", "300"]));
    await tc.waitJob(service.id, (j) => j.taskList.every((t) => t.state === "running"), 60_000, "running");
  });

  after(async () => {
    await tc?.close();
    rmSync(markDir, { recursive: true, force: true });
  });

  it("the primary's exposition passes promtool and its histograms and counters have samples", async () => {
    const text = await scrape(primary);
    promtool(["check", "metrics"], text);
    const { families, samples } = parseExposition(text);
    for (const f of MANAGER_FAMILIES) assert.ok(families.has(f), `the primary serves ${f}`);
    assert.ok(total(samples, "torca_placement_duration_seconds_count") >= 3, "placement rounds timed");
    assert.ok(total(samples, "torca_submit_to_running_seconds_count") >= 2, "submit-to-running observed per first attempt");
    assert.ok(total(samples, "torca_dispatch_duration_seconds_count", { result: "ok" }) >= 4, "dispatches timed");
    assert.ok(total(samples, "torca_placements_total") >= 4, "placements counted (3 first attempts and a restart)");
    assert.ok(total(samples, "torca_restarts_total") >= 1, "the flaky job's restart counted");
    assert.ok(total(samples, "torca_zookeeper_operation_duration_seconds_count", { operation: "create", result: "ok" }) >= 1, "ZooKeeper writes timed by operation");
    assert.equal(total(samples, "torca_fencing_events_total"), 0);
    assert.equal(total(samples, "torca_manager_is_primary"), 1);
  });

  it("requests are timed by route pattern and status code, never by raw path", async () => {
    const { samples } = parseExposition(await scrape(primary));
    const http = samples.filter((s) => s.name === "torca_http_request_duration_seconds_count");
    assert.ok(total(http, "torca_http_request_duration_seconds_count", { method: "POST", route: "/v1/jobs", code: "201" }) >= 3, "submissions");
    assert.ok(total(http, "torca_http_request_duration_seconds_count", { method: "GET", route: "/v1/jobs/:id", code: "200" }) >= 1, "job reads under their pattern");
    assert.ok(total(http, "torca_http_request_duration_seconds_count", { method: "POST", route: "/v1/agents/:id/report" }) >= 1, "agent reports");
    const routes = new Set(http.map((s) => s.labels.route));
    for (const r of routes) assert.ok(!/quick|flaky|sleeper|agent-1/.test(r ?? ""), `no raw path among the routes: ${r}`);
  });

  it("the backup serves the same families, its primary-only series at zero", async () => {
    const text = await scrape(backup);
    promtool(["check", "metrics"], text);
    const b = parseExposition(text);
    const p = parseExposition(await scrape(primary));
    assert.deepEqual([...b.families.keys()].sort(), [...p.families.keys()].sort(), "same families on the backup as on the primary");
    assert.equal(total(b.samples, "torca_manager_is_primary"), 0);
    assert.equal(total(b.samples, "torca_placements_total"), 0);
    assert.ok(total(b.samples, "torca_zookeeper_operation_duration_seconds_count") >= 1, "the backup's own ZooKeeper reads are timed");
  });

  it("the agent serves its families at its own address, with the running task's cgroup usage", async () => {
    const taskId = "sleeper/0";
    let samples: Sample[] = [];
    await eventually("the agent's metrics show the running task's usage", async () => {
      const text = await scrape(agent);
      promtool(["check", "metrics"], text);
      const parsed = parseExposition(text);
      for (const f of AGENT_FAMILIES) assert.ok(parsed.families.has(f), `the agent serves ${f}`);
      samples = parsed.samples;
      assert.ok(total(samples, "torca_agent_task_memory_bytes", { task: taskId }) > 0, "memory of the sleeper");
    }, { timeoutMs: 30_000 });
    assert.equal(total(samples, "torca_agent_tasks_running"), 1);
    assert.ok(total(samples, "torca_agent_task_launches_total", { result: "started" }) >= 4);
    assert.ok(total(samples, "torca_agent_launch_duration_seconds_count") >= 4);
    assert.ok(total(samples, "torca_agent_task_pids", { task: taskId }) >= 1);
    assert.ok(total(samples, "torca_http_request_duration_seconds_count", { method: "PUT", route: "/v1/tasks/:id", code: "201" }) >= 4, "dispatches received, by pattern");
  });
});
