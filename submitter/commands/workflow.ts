/** `torca workflow submit|status|resume|kill|list` (docs/workflows.md). */
import { readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Command } from "commander";
import { ValidationError } from "../../src/common/errors.js";
import { decodeUtf8 } from "../../src/common/utf8.js";
import { jobPathsOf, parseWorkflow } from "../../src/manager/workflow/parse.js";
import { withExamples, type CliContext } from "../context.js";
import { ago, state, table } from "../format.js";

type WorkflowSummary = { id: string; state: string; desired: string; submittedAt: number; finishedAt?: number; resumes: number; nodes: Record<string, number> };
type WorkflowNodeView = { name: string; after: string[]; when: string; state: string; attempts: number; job: string | null; reason?: string };
type WorkflowDetail = WorkflowSummary & { nodeList: WorkflowNodeView[] };

function readText(file: string): string {
  try {
    return decodeUtf8(readFileSync(file), basename(file));
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    throw new ValidationError([{ field: "FILE", message: `cannot read ${file}: ${(e as Error).message}` }]);
  }
}

/**
 * The workflow file and the task files its nodes name (relative to it), checked
 * here with the server's parser first, so errors name the node and the line
 * before anything is sent.
 */
export function readWorkflowFile(file: string): { source: string; file: string; files: Record<string, string> } {
  const source = readText(file);
  const files: Record<string, string> = {};
  for (const p of jobPathsOf(source)) {
    try {
      files[p] = decodeUtf8(readFileSync(resolve(dirname(file), p)), p);
    } catch {
      // Left out: the parser reports the node whose task file is missing, with its line.
    }
  }
  parseWorkflow(source, { source: basename(file), files });
  return { source, file: basename(file), files };
}

function nodesLine(nodes: Record<string, number>): string {
  return Object.entries(nodes).map(([k, n]) => `${n} ${k}`).join(", ") || "-";
}

function detailText(w: WorkflowDetail): string {
  return [
    `workflow ${w.id}: ${state(w.state)}${w.desired === "stop" && w.state === "running" ? " (killing)" : ""}${w.resumes ? `, resumed ${w.resumes}x` : ""}`,
    table(
      ["node", "state", "attempts", "job", "after", "reason"],
      w.nodeList.map((n) => [n.name, state(n.state), n.attempts, n.job ?? "-", n.after.length ? `${n.after.join(",")}${n.when !== "ok" ? ` (${n.when})` : ""}` : "-", n.reason ?? ""]),
    ),
  ].join("\n");
}

export function registerWorkflow(program: Command, ctx: CliContext): void {
  const wf = program.command("workflow").description("workflows: jobs that run after other jobs (a DAG of nodes)");
  const path = (id: string) => `/v1/workflows/${encodeURIComponent(id)}`;

  const submit = wf
    .command("submit")
    .description("validate a workflow file (and the task files it names) and submit it; prints the workflow id")
    .argument("<file>", "workflow file (YAML or JSON)")
    .action(async (file: string) => {
      const body = readWorkflowFile(file);
      const r = await ctx.client().post<{ id: string; workflow: WorkflowSummary }>("/v1/workflows", body);
      ctx.out(r, () => r.id);
    });
  withExamples(submit, ["torca workflow submit config/examples/diamond.workflow.yaml", "torca workflow submit nightly.yaml --json"]);

  const status = wf
    .command("status")
    .description("a workflow's state and, per node, its state, attempts and job")
    .argument("<name>", "workflow (NS:NAME outside the default namespace)")
    .action(async (id: string) => {
      const w = await ctx.client().get<WorkflowDetail>(path(id));
      ctx.out(w, () => detailText(w));
    });
  withExamples(status, ["torca workflow status diamond", "torca workflow status team-a:nightly --json"]);

  const resume = wf
    .command("resume")
    .description("rerun what did not succeed in a failed or killed workflow (like a rescue DAG); succeeded nodes are kept")
    .argument("<name>")
    .action(async (id: string) => {
      const w = await ctx.client().post<WorkflowDetail>(`${path(id)}/resume`, {});
      ctx.out(w, () => detailText(w));
    });
  withExamples(resume, ["torca workflow resume diamond"]);

  const kill = wf
    .command("kill")
    .description("kill a workflow: its running nodes' jobs are killed, nothing more starts")
    .argument("<name>")
    .action(async (id: string) => {
      const w = await ctx.client().delete<WorkflowDetail>(path(id));
      ctx.out(w, () => detailText(w));
    });
  withExamples(kill, ["torca workflow kill diamond"]);

  const list = wf
    .command("list")
    .description("list workflows")
    .action(async () => {
      const r = await ctx.client().get<{ workflows: WorkflowSummary[] }>("/v1/workflows");
      ctx.out(r.workflows, () => table(["workflow", "state", "nodes", "submitted", "finished"], r.workflows.map((w) => [w.id, state(w.state), nodesLine(w.nodes), ago(w.submittedAt), ago(w.finishedAt)])));
    });
  withExamples(list, ["torca workflow list", "torca workflow list --json"]);
}
