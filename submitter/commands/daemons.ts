/** Verbs that run daemons in the foreground until SIGINT/SIGTERM: manager, agent, and up (a whole local cell). */
import { resolve } from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../../src/common/config.js";
import { untilSignal, withExamples } from "../context.js";

export function registerManager(program: Command): void {
  const cmd = program
    .command("manager")
    .description("run a Central Manager daemon")
    .requiredOption("--config <file>", "config file (YAML or JSON)")
    .action(async (o: { config: string }) => {
      const { ManagerDaemon } = await import("../../src/manager/manager.js");
      const d = new ManagerDaemon(loadConfig(o.config).config);
      await d.start();
      await untilSignal();
      await d.stop();
    });
  withExamples(cmd, ["torca manager --config config/examples/manager.yaml"]);
}

export function registerAgent(program: Command): void {
  const cmd = program
    .command("agent")
    .description("run an Execute Server (agent) daemon")
    .requiredOption("--config <file>", "config file (YAML or JSON)")
    .option("--stop-tasks-on-exit", "stop this agent's tasks when it stops (a restart otherwise leaves them running)")
    .action(async (o: { config: string; stopTasksOnExit?: boolean }) => {
      const { AgentDaemon } = await import("../../agent/agent.js");
      const d = new AgentDaemon(loadConfig(o.config).config);
      await d.start();
      await untilSignal();
      await d.stop({ deregister: Boolean(o.stopTasksOnExit), stopTasks: Boolean(o.stopTasksOnExit) });
      // A restart keeps the ZooKeeper session for the next incarnation, and its native client would keep us alive.
      if (!o.stopTasksOnExit) process.exit(0);
    });
  withExamples(cmd, ["torca agent --config config/examples/agent.yaml"]);
}

export function registerUp(program: Command): void {
  const cmd = program
    .command("up")
    .description("start a local cell: ZooKeeper, a primary and a backup manager, and one agent")
    .option("--dir <dir>", "cell directory", ".torca")
    .option("--managers <n>", "number of managers", "2")
    .option("--agents <n>", "number of agents", "1")
    .option("--driver <driver>", "agent driver: auto | lxc | process", "auto")
    .option("--tls", "run every daemon on HTTPS, with a cell CA and certificates made under the cell dir (the CLI trusts it by itself)")
    .action(async (o: { dir: string; managers: string; agents: string; driver: "auto" | "lxc" | "process"; tls?: boolean }) => {
      const { LocalCell } = await import("../../src/cell/local-cell.js");
      const cell = new LocalCell({ dir: o.dir, managers: Number(o.managers), agents: Number(o.agents), agentDriver: o.driver, stopTasksOnExit: true, tls: Boolean(o.tls) });
      const stopping = untilSignal();
      try {
        await cell.start();
        const leader = await cell.waitUntilUp(Number(o.agents), 60_000);
        process.stdout.write(
          [
            "Torca local cell is up.",
            `  API and status pages: ${leader.url}  (backup: ${cell.managerUrls.filter((u) => u !== leader.url).join(", ") || "none"})`,
            `  token: ${cell.tokenFile}  (the torca CLI in this directory finds it by itself)`,
            ...(cell.caFile ? [`  TLS: every daemon on HTTPS; cell CA ${cell.caFile} (the CLI trusts it; a browser needs it imported)`] : []),
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
  withExamples(cmd, ["torca up", "torca up --dir /tmp/cell --agents 2 --driver process", "torca up --tls"]);
}
