import { readFileSync, createReadStream, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Command, CommanderError } from "commander";
import { loadConfig } from "../src/common/config.js";
import { isTorcaError, toTorcaError, TorcaError, ValidationError } from "../src/common/errors.js";
import { parseTaskFile } from "../src/common/taskfile.js";
import { formatBytes } from "../src/common/units.js";
import { decodeUtf8 } from "../src/common/utf8.js";
import { TorcaClient } from "./client.js";
import { ago, progress, state, table } from "./format.js";
import { clientSettings } from "./settings.js";

/** `torca`: the one binary. Exit codes: 0 ok, 1 error, 2 bad usage or invalid input, 3 could not be placed. */

interface GlobalOpts {
  manager?: string;
  token?: string;
  json?: boolean;
}

type JobSummary = { id: string; type: string; status: string; desired: string; instances: number; priority: number; submittedAt: number; tasks: Record<string, number> };
type TaskView = { id: string; state: string; desired: string; attempt: number; nodeId?: string; exit?: { exitCode: number | null; reason: string }; reason?: string; updatedAt: number; startedAt?: number; finishedAt?: number; ports?: Record<string, number>; events: { at: number; type: string; message: string }[] };
type JobDetail = JobSummary & { taskList: TaskView[]; packageDigest?: string };

const program = new Command("torca");
program
  .description("Torca: submit and watch work on a Torca cell")
  .option("--manager <url>", "manager URL (default: $TORCA_MANAGER, then the local cell)")
  .option("--token <token>", "API token (default: $TORCA_TOKEN, then the local cell's token)")
  .option("--json", "machine-readable output")
  .showHelpAfterError()
  .exitOverride();

function g(): GlobalOpts {
  return program.opts<GlobalOpts>();
}

function client(): TorcaClient {
  return new TorcaClient(clientSettings(g()));
}

function out(json: unknown, human: () => string): void {
  process.stdout.write((g().json ? JSON.stringify(json, null, 2) : human()) + "\n");
}

function readTaskFile(file: string): { text: string; contentType: string } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new ValidationError([{ field: "FILE", message: `cannot read ${file}: ${(e as Error).message}` }]);
  }
  const text = decodeUtf8(bytes, basename(file));
  // Validate locally first: errors name the file, field, line and column.
  parseTaskFile(text, { source: basename(file) });
  return { text, contentType: file.endsWith(".json") ? "application/json" : "application/yaml" };
}

program
  .command("submit")
  .description("submit a task description file; prints the job id")
  .argument("<file>", "task description (YAML or JSON)")
  .option("--wait", "wait until the job runs (services) or finishes (batch)")
  .option("--timeout <seconds>", "give up waiting after this long", "600")
  .addHelpText("after", "\nExamples:\n  torca submit config/examples/hello.yaml --wait\n  torca submit web.yaml --json")
  .action(async (file: string, o: { wait?: boolean; timeout: string }) => {
    const { text, contentType } = readTaskFile(file);
    const c = client();
    const r = await c.post<{ id: string }>("/v1/jobs", text, contentType);
    if (!o.wait) return out(r, () => r.id);
    if (!g().json) process.stderr.write(`submitted ${r.id}; waiting\n`);
    const deadline = Date.now() + Number(o.timeout) * 1000;
    for (;;) {
      let j: JobDetail;
      try {
        j = await c.get<JobDetail>(`/v1/jobs/${encodeURIComponent(r.id)}`);
      } catch (e) {
        // A backup may not have seen the new job yet (its copy follows by watch): ask again.
        if (isTorcaError(e) && e.code === "not_found" && Date.now() < deadline) {
          await sleep(100);
          continue;
        }
        throw e;
      }
      const running = j.tasks.running ?? 0;
      const done = (j.tasks.completed ?? 0) + (j.tasks.failed ?? 0) + (j.tasks.killed ?? 0) + (j.tasks.lost ?? 0);
      if (j.instances > 1 && !g().json) progress(j.type === "batch" ? "finished" : "running", j.type === "batch" ? done : running, j.instances);
      const finished = ["complete", "failed", "dead"].includes(j.status) || (j.type === "service" && running >= j.instances);
      if (finished) {
        out(j, () => `${j.id} ${state(j.status)}`);
        if (j.status === "failed") process.exitCode = 1;
        return;
      }
      if (Date.now() > deadline) {
        const reasons = [...new Set(j.taskList.map((t) => t.reason).filter(Boolean))];
        process.stderr.write(`timed out waiting for ${j.id} (status ${j.status})${reasons.length ? `: ${reasons.join("; ")}` : ""}\n`);
        process.exitCode = reasons.some((x) => x!.startsWith("no node fits")) ? 3 : 1;
        return;
      }
      await sleep(250);
    }
  });

program
  .command("plan")
  .description("dry run: where the job would go, or exactly why it cannot be placed")
  .argument("<file>")
  .action(async (file: string) => {
    const { text, contentType } = readTaskFile(file);
    type Metrics = { nodesEvaluated: number; candidates: { nodeId: string; score: number }[] };
    const r = await client().post<{ placeable: boolean; placements: { taskId: string; nodeId: string; score: number; metrics: Metrics }[]; unplaced: { taskId: string; summary: string; largestFit: { cpu: number; memory: number }; metrics: Metrics }[]; preemptions: { victimTaskId: string; nodeId: string }[] }>("/v1/jobs/plan", text, contentType);
    // The full metrics (filtered per checker, exhausted per dimension, per-scorer scores) are in --json.
    const runnersUp = (m: Metrics) => m.candidates.slice(1).map((c) => `${c.nodeId} ${c.score.toFixed(3)}`).join(", ");
    out(r, () => {
      const lines = r.placements.map((p) => `${p.taskId} → ${p.nodeId} (score ${p.score.toFixed(3)}; ${p.metrics.nodesEvaluated} nodes evaluated${runnersUp(p.metrics) ? `; next: ${runnersUp(p.metrics)}` : ""})`);
      for (const p of r.preemptions) lines.push(`would preempt ${p.victimTaskId} on ${p.nodeId}`);
      for (const u of r.unplaced) lines.push(`${u.taskId}: cannot be placed: ${u.summary} (largest fit now: ${u.largestFit.cpu} cpu, ${formatBytes(u.largestFit.memory)})`);
      return lines.join("\n");
    });
    if (!r.placeable) process.exitCode = 3;
  });

program
  .command("jobs")
  .description("list jobs")
  .option("--status <status>", "only jobs with this status")
  .action(async (o: { status?: string }) => {
    const r = await client().get<{ jobs: JobSummary[] }>(`/v1/jobs${o.status ? `?status=${encodeURIComponent(o.status)}` : ""}`);
    out(r.jobs, () =>
      table(
        ["job", "type", "status", "tasks", "submitted"],
        r.jobs.map((j) => [j.id, j.type, state(j.status), Object.entries(j.tasks).map(([k, v]) => `${v} ${k}`).join(", ") || "-", ago(j.submittedAt)]),
      ),
    );
  });

program
  .command("status")
  .description("a job's status and its tasks")
  .argument("<job>")
  .action(async (id: string) => {
    const j = await client().get<JobDetail>(`/v1/jobs/${encodeURIComponent(id)}`);
    out(j, () =>
      [
        `job ${j.id}: ${state(j.status)} (${j.type}, priority ${j.priority}, ${j.instances} instance${j.instances === 1 ? "" : "s"})`,
        table(
          ["task", "state", "node", "attempt", "exit", "updated", "reason"],
          j.taskList.map((t) => [t.id, state(t.state), t.nodeId ?? "-", t.attempt, t.exit ? String(t.exit.exitCode ?? t.exit.reason) : "-", ago(t.updatedAt), t.reason ?? ""]),
        ),
      ].join("\n"),
    );
  });

program
  .command("tasks")
  .description("a job's task instances with their events")
  .argument("<job>")
  .action(async (id: string) => {
    const j = await client().get<JobDetail>(`/v1/jobs/${encodeURIComponent(id)}`);
    out(j.taskList, () => j.taskList.map((t) => `${t.id}  ${state(t.state)}  ${t.nodeId ?? "-"}\n${t.events.map((e) => `  ${new Date(e.at).toISOString()}  ${e.type}: ${e.message}`).join("\n")}`).join("\n"));
  });

program
  .command("kill")
  .description("stop every task of a job")
  .argument("<job>")
  .action(async (id: string) => {
    const r = await client().delete<{ id: string; status: string }>(`/v1/jobs/${encodeURIComponent(id)}`);
    out(r, () => `${r.id}: stopping`);
  });

program
  .command("logs")
  .description("a task's output (TASK is job/index, e.g. hello/0)")
  .argument("<task>")
  .option("-f, --follow", "keep streaming until the task exits")
  .option("--stderr", "stderr instead of stdout")
  .option("--tail <lines>", "only the last N lines")
  .action(async (task: string, o: { follow?: boolean; stderr?: boolean; tail?: string }) => {
    const q = new URLSearchParams({ stream: o.stderr ? "stderr" : "stdout" });
    if (o.follow) q.set("follow", "1");
    if (o.tail) q.set("tail", o.tail);
    const c = client();
    await c.get(`/v1/tasks/${encodeURIComponent(task)}`); // clear 404 before streaming
    await new Promise<void>((resolveP, reject) => {
      const s = c.stream(`/v1/tasks/${encodeURIComponent(task)}/logs?${q}`);
      s.on("error", reject);
      s.on("end", () => resolveP());
      s.pipe(process.stdout, { end: false });
    });
  });

program
  .command("nodes")
  .description("machines in the cell")
  .action(async () => {
    const r = await client().get<{ nodes: { id: string; state: string; host: string; allocatable: { cpu: number; memory: number }; tasks: string[]; drivers: { lxc: boolean }; lastReportAt: number }[] }>("/v1/nodes");
    out(r.nodes, () =>
      table(
        ["node", "state", "host", "cpu", "memory", "tasks", "drivers", "reported"],
        r.nodes.map((n) => [n.id, state(n.state), n.host, n.allocatable.cpu, formatBytes(n.allocatable.memory), n.tasks.length, n.drivers.lxc ? "lxc,process" : "process", ago(n.lastReportAt)]),
      ),
    );
  });

program
  .command("drain")
  .description("stop placing work on a node and migrate its tasks away")
  .argument("<node>")
  .option("--undo", "make the node eligible again")
  .action(async (node: string, o: { undo?: boolean }) => {
    const r = await client().post<{ id: string; draining: boolean }>(`/v1/nodes/${encodeURIComponent(node)}/drain`, { undo: Boolean(o.undo) });
    out(r, () => `${r.id}: ${r.draining ? "draining" : "eligible"}`);
  });

program
  .command("push")
  .description("pack DIR as tar.gz and upload it to shared storage")
  .argument("<dir>")
  .requiredOption("--name <name>", "package name")
  .requiredOption("--version <version>", "package version")
  .action(async (dir: string, o: { name: string; version: string }) => {
    const { packDirectoryToFile } = await import("../src/storage/pack.js");
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const tmp = mkdtempSync(resolve(tmpdir(), "torca-push-"));
    try {
      const file = resolve(tmp, "package.tar.gz");
      await packDirectoryToFile(resolve(dir), file);
      const size = statSync(file).size;
      const r = await client().put<{ digest: string; size: number }>(`/v1/packages/${encodeURIComponent(o.name)}/${encodeURIComponent(o.version)}`, () => createReadStream(file), "application/gzip", (sent) =>
        g().json ? undefined : progress("upload", sent, size),
      );
      out(r, () => `${o.name}@${o.version} ${r.digest} (${formatBytes(r.size ?? size)})`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

program
  .command("packages")
  .description("packages in shared storage")
  .action(async () => {
    const r = await client().get<{ packages: { name: string; version: string; digest: string; size: number; pushedAt: number }[] }>("/v1/packages");
    out(r.packages, () => table(["package", "digest", "size", "pushed"], r.packages.map((p) => [`${p.name}@${p.version}`, p.digest.slice(0, 19), formatBytes(p.size), ago(p.pushedAt)])));
  });

program
  .command("resolve")
  .description("naming lookup: the endpoints of a service")
  .argument("<name>", "service name, e.g. web.frontend or ns/web.frontend")
  .option("--watch", "print changes as they happen (until interrupted)")
  .action(async (name: string, o: { watch?: boolean }) => {
    type Eps = { name: string; stale?: boolean; version?: number; endpoints: { host: string; port: number; task: string; node: string }[] };
    const c = client();
    const show = (r: Eps) =>
      out(r, () => {
        const note = r.stale ? ` (stale: the manager cannot reach ZooKeeper; last known endpoints)` : "";
        if (!r.endpoints.length) return `${r.name}: no endpoints${note}`;
        return table(["endpoint", "task", "node"], r.endpoints.map((e) => [`${e.host}:${e.port}`, e.task, e.node])) + (note ? `\n${note.trim()}` : "");
      });
    const path = `/v1/names/${encodeURIComponent(name)}`;
    let r = await c.get<Eps>(path);
    show(r);
    // --watch long-polls: the manager answers as soon as the name changes (or after 20 s with no change).
    const deadline = Date.now() + 24 * 3_600_000;
    let last = JSON.stringify([r.endpoints, r.stale]);
    while (o.watch && Date.now() < deadline) {
      r = await c.get<Eps>(`${path}?index=${r.version ?? 0}&wait=20`);
      const key = JSON.stringify([r.endpoints, r.stale]);
      if (key !== last) show(r);
      last = key;
    }
  });

const naming = program.command("naming").description("naming service tools");
naming
  .command("dns")
  .description("serve DNS (UDP) for <service>.<namespace>.torca. names: SRV and A records from a watched resolver cache")
  .option("--port <port>", "UDP port", "5353")
  .option("--host <address>", "address to listen on (loopback unless told otherwise)", "127.0.0.1")
  .option("--config <file>", "cluster config (cluster.zookeeper, cluster.root); default: the local cell")
  .option("--zookeeper <connect>", "ZooKeeper connect string (overrides the config)")
  .option("--ttl <seconds>", "TTL of answers", "5")
  .addHelpText("after", "\nExample:\n  torca naming dns --port 5353 &\n  dig @127.0.0.1 -p 5353 SRV demo.web.default.torca")
  .action(async (o: { port: string; host: string; config?: string; zookeeper?: string; ttl: string }) => {
    const { Resolver } = await import("../naming/resolver.js");
    const { DnsServer } = await import("../naming/dns.js");
    const { findCell } = await import("./settings.js");
    const port = Number(o.port);
    const ttl = Number(o.ttl);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ValidationError([{ field: "--port", message: `not a port: ${o.port}` }]);
    if (!Number.isInteger(ttl) || ttl < 0) throw new ValidationError([{ field: "--ttl", message: `not a number of seconds: ${o.ttl}` }]);
    const cluster = o.config ? loadConfig(o.config).config.cluster : undefined;
    const zookeeper = o.zookeeper ?? cluster?.zookeeper ?? findCell()?.zookeeper;
    if (!zookeeper) throw new ValidationError([{ field: "--config", message: "no ZooKeeper given: pass --config FILE or --zookeeper HOST:PORT, or run next to a local cell" }]);
    const resolver = new Resolver({ zookeeper, root: cluster?.root ?? "/torca", sessionTimeoutMs: cluster?.sessionTimeout ?? 10_000 });
    void resolver.start();
    const dns = new DnsServer({ resolver, port, host: o.host, ttl });
    const addr = await dns.start();
    process.stderr.write(`torca naming dns: answering for *.torca on udp ${addr.host}:${addr.port} (ZooKeeper ${zookeeper})\n`);
    await untilSignal();
    await dns.close();
    resolver.close();
  });

type AlertDelivery = { id: string; key: string; kind: string; channel: string; to: string; status: string; attempts: number; lastError?: string; createdAt: number; message: { subject: string } };

program
  .command("alerts")
  .description("alert history: one line per message (incident × recipient), newest first")
  .option("--limit <n>", "how many", "50")
  .action(async (o: { limit: string }) => {
    const r = await client().get<{ alerts: AlertDelivery[] }>(`/v1/alerts?limit=${encodeURIComponent(o.limit)}`);
    out(r.alerts, () =>
      table(
        ["when", "kind", "to", "status", "tries", "subject"],
        r.alerts.map((a) => [ago(a.createdAt), a.kind, `${a.channel}:${a.to}`, state(a.status) + (a.lastError && a.status !== "sent" ? ` (${a.lastError.slice(0, 60)})` : ""), a.attempts, a.message.subject]),
      ),
    );
  });

program
  .command("manager")
  .description("run a Central Manager daemon")
  .requiredOption("--config <file>", "config file (YAML or JSON)")
  .action(async (o: { config: string }) => {
    const { ManagerDaemon } = await import("../src/manager/manager.js");
    const d = new ManagerDaemon(loadConfig(o.config).config);
    await d.start();
    await untilSignal();
    await d.stop();
  });

program
  .command("agent")
  .description("run an Execute Server (agent) daemon")
  .requiredOption("--config <file>", "config file (YAML or JSON)")
  .option("--stop-tasks-on-exit", "stop this agent's tasks when it stops (a restart otherwise leaves them running)")
  .action(async (o: { config: string; stopTasksOnExit?: boolean }) => {
    const { AgentDaemon } = await import("../agent/agent.js");
    const d = new AgentDaemon(loadConfig(o.config).config);
    await d.start();
    await untilSignal();
    await d.stop({ deregister: Boolean(o.stopTasksOnExit), stopTasks: Boolean(o.stopTasksOnExit) });
    // A restart keeps the ZooKeeper session for the next incarnation, and its native client would keep us alive.
    if (!o.stopTasksOnExit) process.exit(0);
  });

const master = program
  .command("master")
  .description("run the master daemon (supervises this machine's daemons); `master status` shows it")
  .option("--config <file>", "config file with a master: section")
  .action(async (o: { config?: string }) => {
    if (!o.config) throw new ValidationError([{ field: "--config", message: "torca master needs --config FILE (or use: torca master status)" }]);
    const { runMaster } = await import("../src/master/master.js");
    const { crashLoopAlert } = await import("../src/master/crashloop-alert.js");
    const { createAlerter, MemoryAlertLedger } = await import("../src/manager/alerting/index.js");
    const { alertingConfigFrom } = await import("../src/manager/alerting/wiring.js");
    const { hostname } = await import("node:os");
    const full = loadConfig(o.config).config;
    const m = full.master;
    // The master has no ZooKeeper session of its own: it alerts straight through the
    // configured notifiers and routes, deduplicating within this master process.
    const alerter = createAlerter(alertingConfigFrom(full.manager.alerting), new MemoryAlertLedger());
    if (m.daemons.length === 0) throw new ValidationError([{ field: "master.daemons", message: `${o.config} lists no daemons to supervise` }]);
    const running = runMaster(
      {
        statusDir: m.statusDir,
        statusIntervalMs: m.statusInterval,
        daemons: m.daemons,
        backoff: { initialMs: m.backoff.initial, factor: m.backoff.factor, maxMs: m.backoff.max },
        stableMs: m.stableAfter,
        crashLoop: { exits: m.crashLoop.exits, windowMs: m.crashLoop.window },
        stopGraceMs: m.stopGrace,
      },
      {
        handleSignals: true,
        onCrashLoop: (name, exits) => void alerter.raise(crashLoopAlert(hostname(), name, exits, { email: [], sms: [] })).catch(() => undefined),
      },
    );
    await running.done;
    await alerter.close();
  });

master
  .command("status")
  .description("what the master on this machine runs, from its status file")
  .option("--dir <dir>", "the master's statusDir (default: from --config, else /var/lib/torca)")
  .option("--config <file>", "read statusDir from this config")
  .action(async (o: { dir?: string; config?: string }) => {
    const { readMasterStatus, formatMasterStatus } = await import("../src/master/status.js");
    const dir = o.dir ? resolve(o.dir) : o.config ? loadConfig(o.config).config.master.statusDir : "/var/lib/torca";
    const s = await readMasterStatus(dir);
    if (!s) throw new TorcaError("not_found", `no master status in ${dir} (is a master running with statusDir ${dir}?)`, { exitCode: 1 });
    out(s, () => formatMasterStatus(s));
    if (!s.running) process.exitCode = 1;
  });

program
  .command("up")
  .description("start a local cell: ZooKeeper, a primary and a backup manager, and one agent")
  .option("--dir <dir>", "cell directory", ".torca")
  .option("--managers <n>", "number of managers", "2")
  .option("--agents <n>", "number of agents", "1")
  .option("--driver <driver>", "agent driver: auto | lxc | process", "auto")
  .action(async (o: { dir: string; managers: string; agents: string; driver: "auto" | "lxc" | "process" }) => {
    const { LocalCell } = await import("../src/cell/local-cell.js");
    const cell = new LocalCell({ dir: o.dir, managers: Number(o.managers), agents: Number(o.agents), agentDriver: o.driver, stopTasksOnExit: true });
    const stopping = untilSignal();
    try {
      await cell.start();
      const leader = await cell.waitForPrimary(60_000);
      await cell.waitForNodes(Number(o.agents), 60_000);
      process.stdout.write(
        [
          "Torca local cell is up.",
          `  API and status pages: ${leader.url}  (backup: ${cell.managerUrls.filter((u) => u !== leader.url).join(", ") || "none"})`,
          `  token: ${cell.tokenFile}  (the torca CLI in this directory finds it by itself)`,
          `  ZooKeeper: ${cell.zookeeper!.connectString}   logs: ${resolve(o.dir, "logs")}`,
          "  try: npx torca submit config/examples/hello.yaml --wait",
          "Press Ctrl-C to stop the cell.",
          "",
        ].join("\n"),
      );
      await stopping;
      process.stdout.write("stopping the cell…\n");
    } finally {
      await cell.stop();
    }
  });

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((r) => {
    const on = (s: NodeJS.Signals) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      r(s);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/** Examples shown under every verb's --help. */
const EXAMPLES: Record<string, string[]> = {
  plan: ["torca plan web.yaml", "torca plan web.yaml --json"],
  jobs: ["torca jobs", "torca jobs --status running --json"],
  status: ["torca status hello", "torca status web-frontend --json"],
  tasks: ["torca tasks web-frontend"],
  kill: ["torca kill web-frontend"],
  logs: ["torca logs hello/0", "torca logs web-frontend/2 -f --stderr", "torca logs batch/0 --tail 50"],
  nodes: ["torca nodes", "torca nodes --json"],
  drain: ["torca drain agent-3", "torca drain agent-3 --undo"],
  push: ["torca push ./build --name webapp --version 1.2.0"],
  packages: ["torca packages"],
  resolve: ["torca resolve demo.web", "torca resolve prod/web.frontend --watch"],
  alerts: ["torca alerts", "torca alerts --json"],
  manager: ["torca manager --config config/examples/manager.yaml"],
  agent: ["torca agent --config config/examples/agent.yaml"],
  master: ["torca master --config config/examples/host.yaml", "torca master status --dir /var/lib/torca"],
  up: ["torca up", "torca up --dir /tmp/cell --agents 2 --driver process"],
};
for (const cmd of program.commands) {
  const ex = EXAMPLES[cmd.name()];
  if (ex) cmd.addHelpText("after", `\nExamples:\n${ex.map((e) => `  ${e}`).join("\n")}`);
}

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    const err = isTorcaError(e) ? e : toTorcaError(e);
    process.stderr.write(`torca: ${err.message}\n`);
    process.exitCode = err.exitCode;
  }
}

await main();
