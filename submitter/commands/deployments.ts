/** Verbs on versions and rollouts: revert, scale, restart, signal, deployment status|promote|pause|resume|fail. */
import type { Command } from "commander";
import { ValidationError } from "../../src/common/errors.js";
import { withExamples, type CliContext } from "../context.js";
import { ago, state, table } from "../format.js";

export type FieldChange = { field: string; from?: unknown; to?: unknown; inPlace: boolean };
type SubmitAnswer = { id: string; version: number; change: string; message: string; diff?: { fields: FieldChange[] } };
type DeploymentView = {
  job: string;
  version: number;
  deployment: { id: string; version: number; status: string; description: string; startedAt: number; promoted: boolean; finishedAt?: number } | null;
  versions: { version: number; instances: number; healthy: number; unhealthy: number; canaries: number; stopping: number }[];
};

const show = (v: unknown) => (v === undefined ? "-" : JSON.stringify(v));

/** One line per changed field: `env.VERSION: "v1" → "v2" (restart)`. */
export function formatFields(fields: readonly FieldChange[]): string {
  return fields.map((f) => `  ${f.field}: ${show(f.from)} → ${show(f.to)}${f.inPlace ? " (in place)" : ""}`).join("\n");
}

function formatDeployment(r: DeploymentView): string {
  const d = r.deployment;
  const head = d ? `${r.job} version ${d.version}: deployment ${state(d.status)} (${d.description}), started ${ago(d.startedAt)}` : `${r.job} version ${r.version}: no deployment`;
  const rows = r.versions.map((v) => [v.version, v.instances, v.healthy, v.unhealthy, v.canaries, v.stopping]);
  return `${head}\n${table(["version", "instances", "healthy", "unhealthy", "canaries", "stopping"], rows)}`;
}

function formatSubmit(r: SubmitAnswer): string {
  return r.diff?.fields.length ? `${r.message}\n${formatFields(r.diff.fields)}` : r.message;
}

const jobPath = (job: string) => `/v1/jobs/${encodeURIComponent(job)}`;

function registerDeployment(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("deployment")
    .description("the rollout of a job's latest version: status, or promote its canaries, pause, resume, fail it")
    .argument("<action>", "status | promote | pause | resume | fail")
    .argument("<job>", "a job id (NAME or NS:NAME)");
  withExamples(cmd, ["torca deployment status web", "torca deployment promote web", "torca deployment fail web --json"]);
  cmd.action(async (action: string, job: string) => {
    const c = ctx.client();
    let r: DeploymentView;
    if (action === "status") r = await c.get<DeploymentView>(`${jobPath(job)}/deployment`);
    else if (["promote", "pause", "resume", "fail"].includes(action)) r = await c.post<DeploymentView>(`${jobPath(job)}/deployment/${action}`, {});
    else throw new ValidationError([{ field: "action", message: `must be status, promote, pause, resume or fail, got ${JSON.stringify(action)}` }]);
    ctx.out(r, () => formatDeployment(r));
  });
}

/** A command-line argument that must be a whole number (a version, an instance count). */
function wholeNumber(field: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new ValidationError([{ field, message: `must be a whole number, got ${JSON.stringify(text)}` }]);
  return Number(text);
}

function registerRevert(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("revert")
    .description("submit an earlier version of a job again, as a new version (rolled out like any other)")
    .argument("<job>")
    .argument("<version>", "the version to go back to (see torca history JOB)");
  withExamples(cmd, ["torca revert web 3", "torca revert web 3 --json"]);
  cmd.action(async (job: string, version: string) => {
    const r = await ctx.client().post<SubmitAnswer>(`${jobPath(job)}/revert`, { version: wholeNumber("version", version) });
    ctx.out(r, () => formatSubmit(r));
  });
}

function registerScale(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("scale")
    .description("change a service's instance count (a new version, applied without restarting instances)")
    .argument("<job>")
    .argument("<instances>");
  withExamples(cmd, ["torca scale web 6", "torca scale web 2 --json"]);
  cmd.action(async (job: string, instances: string) => {
    const r = await ctx.client().post<SubmitAnswer>(`${jobPath(job)}/scale`, { instances: wholeNumber("instances", instances) });
    ctx.out(r, () => formatSubmit(r));
  });
}

function registerRestart(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("restart")
    .description("replace every instance of a service, maxParallel at a time by its update block (drained, health-checked)")
    .argument("<job>")
    .option("--all-at-once", "restart every instance together");
  withExamples(cmd, ["torca restart web", "torca restart web --all-at-once"]);
  cmd.action(async (job: string, o: { allAtOnce?: boolean }) => {
    const r = await ctx.client().post<DeploymentView>(`${jobPath(job)}/restart`, o.allAtOnce ? { allAtOnce: true } : {});
    ctx.out(r, () => formatDeployment(r));
  });
}

function registerSignal(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("signal")
    .description("send a signal to a running task's process")
    .argument("<task>", "a task id (JOB/INDEX)")
    .argument("<signal>", "SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGKILL, SIGUSR1 or SIGUSR2 (the SIG prefix is optional)");
  withExamples(cmd, ["torca signal web/0 SIGHUP", "torca signal web/2 USR1 --json"]);
  cmd.action(async (task: string, signal: string) => {
    const sig = signal.toUpperCase().startsWith("SIG") ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
    const r = await ctx.client().post<{ task: string; attempt: number; node: string; signal: string }>(`/v1/tasks/${encodeURIComponent(task)}/signal`, { signal: sig });
    ctx.out(r, () => `${r.signal} sent to ${r.task} (attempt ${r.attempt} on ${r.node})`);
  });
}

export function registerDeployments(program: Command, ctx: CliContext): void {
  registerRevert(program, ctx);
  registerScale(program, ctx);
  registerRestart(program, ctx);
  registerSignal(program, ctx);
  registerDeployment(program, ctx);
}
