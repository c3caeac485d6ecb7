/** `torca master`: the per-machine supervisor daemon, and `master status` to read what it runs. */
import { resolve } from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../../src/common/config.js";
import { TorcaError, ValidationError } from "../../src/common/errors.js";
import { withExamples, type CliContext } from "../context.js";

export function registerMaster(program: Command, ctx: CliContext): void {
  const master = program
    .command("master")
    .description("run the master daemon (supervises this machine's daemons); `master status` shows it")
    .option("--config <file>", "config file with a master: section")
    .action(async (o: { config?: string }) => {
      if (!o.config) throw new ValidationError([{ field: "--config", message: "torca master needs --config FILE (or use: torca master status)" }]);
      const { runMaster } = await import("../../src/master/master.js");
      const { crashLoopAlert } = await import("../../src/master/crashloop-alert.js");
      const { createAlerter, KvAlertLedger, alertingConfigFrom } = await import("../../src/alerting/index.js");
      const { FileLedgerKV } = await import("../../src/master/file-ledger.js");
      const { hostname } = await import("node:os");
      const full = loadConfig(o.config).config;
      const m = full.master;
      // The master has no ZooKeeper session of its own: it alerts straight through the
      // configured notifiers and routes, deduplicating by a ledger in its status directory.
      const alerter = createAlerter(alertingConfigFrom(full.manager.alerting), new KvAlertLedger(new FileLedgerKV(m.statusDir), { root: "/" }));
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
      const { readMasterStatus, formatMasterStatus } = await import("../../src/master/status.js");
      const dir = o.dir ? resolve(o.dir) : o.config ? loadConfig(o.config).config.master.statusDir : "/var/lib/torca";
      const s = await readMasterStatus(dir);
      if (!s) throw new TorcaError("not_found", `no master status in ${dir} (is a master running with statusDir ${dir}?)`, { exitCode: 1 });
      ctx.out(s, () => formatMasterStatus(s));
      if (!s.running) process.exitCode = 1;
    });
  withExamples(master, ["torca master --config config/examples/host.yaml", "torca master status --dir /var/lib/torca"]);
}
