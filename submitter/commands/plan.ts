/** `torca plan`: a dry run of the scheduler for a task file. */
import type { Command } from "commander";
import { formatBytes } from "../../src/common/units.js";
import { withExamples, type CliContext } from "../context.js";
import { readTaskFile } from "../task-file.js";

type Plan = {
  placeable: boolean;
  placements: { taskId: string; nodeId: string; score: number }[];
  unplaced: { taskId: string; summary: string; largestFit: { cpu: number; memory: number } }[];
  preemptions: { victimTaskId: string; nodeId: string }[];
};

function formatPlan(r: Plan): string {
  const lines = r.placements.map((p) => `${p.taskId} → ${p.nodeId} (score ${p.score.toFixed(3)})`);
  for (const p of r.preemptions) lines.push(`would preempt ${p.victimTaskId} on ${p.nodeId}`);
  for (const u of r.unplaced) lines.push(`${u.taskId}: cannot be placed: ${u.summary} (largest fit now: ${u.largestFit.cpu} cpu, ${formatBytes(u.largestFit.memory)})`);
  return lines.join("\n");
}

export function registerPlan(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("plan")
    .description("dry run: where the job would go, or exactly why it cannot be placed")
    .argument("<file>")
    .action(async (file: string) => {
      const { text, contentType } = readTaskFile(file);
      const r = await ctx.client().post<Plan>("/v1/jobs/plan", text, contentType);
      ctx.out(r, () => formatPlan(r));
      // Exit code 3: the job could not be placed.
      if (!r.placeable) process.exitCode = 3;
    });
  withExamples(cmd, ["torca plan web.yaml", "torca plan web.yaml --json"]);
}
