import type { Command } from "commander";
import { TorcaClient } from "./client.js";
import { clientSettings } from "./settings.js";

/** The global options every verb shares (declared on the program in cli.ts). */
export interface GlobalOpts {
  manager?: string;
  token?: string;
  ca?: string;
  json?: boolean;
}

/** What a verb's action needs from the program: the global options, an API client and the one output rule. */
export interface CliContext {
  /** Read when an action runs, after the command line has been parsed. */
  opts(): GlobalOpts;
  client(): TorcaClient;
  /** `--json`: the value as indented JSON; otherwise the human text. One line break after either. */
  out(json: unknown, human: () => string): void;
}

export function cliContext(program: Command): CliContext {
  const opts = () => program.opts<GlobalOpts>();
  return {
    opts,
    client: () => new TorcaClient(clientSettings(opts())),
    out: (json, human) => {
      process.stdout.write((opts().json ? JSON.stringify(json, null, 2) : human()) + "\n");
    },
  };
}

/** The examples shown under a verb's --help. */
export function withExamples(cmd: Command, examples: string[]): Command {
  return cmd.addHelpText("after", `\nExamples:\n${examples.map((e) => `  ${e}`).join("\n")}`);
}

/** Resolves on the first SIGINT or SIGTERM; daemons run until then. */
export function untilSignal(): Promise<NodeJS.Signals> {
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
