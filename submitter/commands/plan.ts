/** `torca plan`: a dry run of the scheduler for a task file. */
import type { Command } from "commander";
import { formatBytes } from "../../src/common/units.js";
import { withExamples, type CliContext } from "../context.js";
import { readTaskFile } from "../task-file.js";

type Metrics = { nodesEvaluated: number; candidates: { nodeId: string; score: number }[] };
type Plan = {
  placeable: boolean;
  placements: { taskId: string; nodeId: string; score: number; metrics: Metrics }[];
  unplaced: { taskId: string; summary: string; largestFit: { cpu: number; memory: number }; metrics: Metrics; smallestChange?: { text: string }[] }[];
  preemptions: { victimTaskId: string; nodeId: string }[];
};

// The full metrics (filtered per checker, exhausted per dimension, per-scorer scores) are in --json.
function runnersUp(m: Metrics): string {
  return m.candidates
    .slice(1)
    .map((c) => `${c.nodeId} ${c.score.toFixed(3)}`)
    .join(", ");
}

function formatPlan(r: Plan): string {
  const lines = r.placements.map((p) => `${p.taskId} → ${p.nodeId} (score ${p.score.toFixed(3)}; ${p.metrics.nodesEvaluated} nodes evaluated${runnersUp(p.metrics) ? `; next: ${runnersUp(p.metrics)}` : ""})`);
  for (const p of r.preemptions) lines.push(`would preempt ${p.victimTaskId} on ${p.nodeId}`);
  // Identical instances share one answer: it is printed under the first of them.
  const said = new Set<string>();
  for (const u of r.unplaced) {
    lines.push(`${u.taskId}: cannot be placed: ${u.summary} (largest fit now: ${u.largestFit.cpu} cpu, ${formatBytes(u.largestFit.memory)})`);
    const change = u.smallestChange?.map((c) => c.text).join("; or ");
    if (change && !said.has(change)) lines.push(`  smallest change that would fit now: ${change}`);
    if (change) said.add(change);
  }
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
