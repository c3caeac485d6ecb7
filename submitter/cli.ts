import { Command, CommanderError } from "commander";
import { isTorcaError, toTorcaError } from "../src/common/errors.js";
import { registerAlerts } from "./commands/alerts.js";
import { registerAgent, registerManager, registerUp } from "./commands/daemons.js";
import { registerExec } from "./commands/exec.js";
import { registerDeployments } from "./commands/deployments.js";
import { registerHistory } from "./commands/history.js";
import { registerJobs, registerKill, registerStatus, registerSubmit } from "./commands/jobs.js";
import { registerMaster } from "./commands/master.js";
import { registerNaming, registerResolve } from "./commands/naming.js";
import { registerDrain, registerNodes } from "./commands/nodes.js";
import { registerPackages, registerPush } from "./commands/packages.js";
import { registerPlan } from "./commands/plan.js";
import { registerLogs, registerTasks } from "./commands/tasks.js";
import { registerQuota } from "./commands/quota.js";
import { registerTokens } from "./commands/tokens.js";
import { registerWorkflow } from "./commands/workflow.js";
import { cliContext } from "./context.js";

/**
 * `torca`: the one binary. Exit codes: 0 ok, 1 error, 2 bad usage or invalid input, 3 could not be placed.
 * Each verb lives in submitter/commands/; the order below is the order of `torca --help`.
 */

const program = new Command("torca");
program
  .description("Torca: submit and watch work on a Torca cell")
  .option("--manager <url>", "manager URL (default: $TORCA_MANAGER, then the local cell)")
  .option("--token <token>", "API token (default: $TORCA_TOKEN, then the local cell's token)")
  .option("--ca <file>", "the cell CA certificate a manager on HTTPS is verified against (default: $TORCA_CA, then the local cell's)")
  .option("--json", "machine-readable output")
  .showHelpAfterError()
  .exitOverride();

const ctx = cliContext(program);
registerSubmit(program, ctx);
registerPlan(program, ctx);
registerJobs(program, ctx);
registerStatus(program, ctx);
registerTasks(program, ctx);
registerKill(program, ctx);
registerLogs(program, ctx);
registerExec(program, ctx);
registerHistory(program, ctx);
registerWorkflow(program, ctx);
registerDeployments(program, ctx);
registerNodes(program, ctx);
registerDrain(program, ctx);
registerPush(program, ctx);
registerPackages(program, ctx);
registerResolve(program, ctx);
registerNaming(program);
registerAlerts(program, ctx);
registerTokens(program, ctx);
registerQuota(program, ctx);
registerManager(program);
registerAgent(program);
registerMaster(program, ctx);
registerUp(program);

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
