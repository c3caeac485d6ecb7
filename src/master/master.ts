import { createLogger, type Logger } from "../common/logger.js";
import { readDaemonRecords, writeDaemonRecords } from "./records.js";
import { writeMasterStatus, type MasterStatus } from "./status.js";
import { Supervisor, type ExitRecord, type SupervisorConfig } from "./supervisor.js";

/**
 * The master daemon: a Supervisor plus the status file plus signal handling.
 * `torca master --config FILE` parses its config into MasterConfig and calls
 * runMaster(). It records its daemons in the status directory (records.ts) as
 * they change, and a master started again after a crash carries on from there:
 * it adopts the daemons still running rather than starting them twice.
 */

export interface MasterConfig extends SupervisorConfig {
  /** Where master-status.json is written (e.g. /var/lib/torca or the cell's .torca/). */
  statusDir: string;
  /** Status file refresh period in ms (default 5 s); changes are written at once as well. */
  statusIntervalMs?: number;
}

const DEFAULTS = Object.freeze({ statusIntervalMs: 5000 });

export interface RunningMaster {
  supervisor: Supervisor;
  /** Stops the daemons (SIGTERM, then SIGKILL after the grace) and writes the final status. */
  stop(): Promise<void>;
  /** Resolves when the master has stopped. */
  done: Promise<void>;
}

export function runMaster(
  config: MasterConfig,
  opts: { onCrashLoop?: (name: string, exits: ExitRecord[]) => void; logger?: Logger; handleSignals?: boolean } = {},
): RunningMaster {
  const log = opts.logger ?? createLogger("master");
  const startedAt = Date.now();
  let state: MasterStatus["state"] = "running";
  let writing: Promise<void> = Promise.resolve();
  let again = false;
  let writeQueued = false;

  // At most one write in flight and one queued: status changes in a burst collapse into one write.
  const writeStatus = (): Promise<void> => {
    if (writeQueued) {
      again = true;
      return writing;
    }
    writeQueued = true;
    writing = writing
      .then(async () => {
        do {
          again = false;
          await writeMasterStatus(config.statusDir, { pid: process.pid, startedAt, writtenAt: Date.now(), state, daemons: supervisor.status() });
        } while (again);
      })
      .catch((e: unknown) => log.error({ err: e, dir: config.statusDir }, "could not write master status"))
      .finally(() => {
        writeQueued = false;
      });
    return writing;
  };

  const supervisor: Supervisor = new Supervisor(config, {
    logger: log,
    restore: readDaemonRecords(config.statusDir, (e) => log.warn({ err: e }, "daemon records unreadable; starting every daemon afresh")),
    onChange: () => {
      // Synchronously, before anything else can happen: a master killed right after starting a daemon must leave it recorded.
      try {
        writeDaemonRecords(config.statusDir, supervisor.records());
      } catch (e) {
        log.error({ err: e, dir: config.statusDir }, "could not record the daemons");
      }
      void writeStatus();
    },
    onCrashLoop: (name, exits) => {
      log.error({ daemon: name, exits: exits.length }, "daemon crash loop");
      opts.onCrashLoop?.(name, exits);
    },
  });

  const refresh = setInterval(() => void writeStatus(), config.statusIntervalMs ?? DEFAULTS.statusIntervalMs);
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopping: Promise<void> | undefined;

  const onSignal = (sig: NodeJS.Signals): void => {
    log.info({ signal: sig }, "master stopping");
    void stop();
  };

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      state = "stopping";
      await writeStatus();
      await supervisor.stop();
      clearInterval(refresh);
      state = "stopped";
      await writeStatus();
      if (opts.handleSignals) for (const s of ["SIGTERM", "SIGINT"] as const) process.off(s, onSignal);
      resolveDone();
    })();
    return stopping;
  };

  if (opts.handleSignals) for (const s of ["SIGTERM", "SIGINT"] as const) process.on(s, onSignal);
  supervisor.start();
  return { supervisor, stop, done };
}
