/** `torca plan`: a dry run of the scheduler for a task file. */
import type { Command } from "commander";
import { formatBytes } from "../../src/common/units.js";
import { withExamples, type CliContext } from "../context.js";
import { readTaskFile } from "../task-file.js";
import { formatFields, type FieldChange } from "./deployments.js";

type Metrics = { nodesEvaluated: number; candidates: { nodeId: string; score: number }[] };
type Plan = {
  placeable: boolean;
  placements: { taskId: string; nodeId: string; score: number; metrics: Metrics }[];
  unplaced: { taskId: string; summary: string; largestFit: { cpu: number; memory: number }; metrics: Metrics; smallestChange?: { text: string }[] }[];
  preemptions: { victimTaskId: string; nodeId: string }[];
  /** For a live job: what the file changes against the running version. */
  version?: { fromVersion: number; diff: { identical: boolean; fields: FieldChange[]; replaces: boolean }; instances: { replaced: string[]; updatedInPlace: string[]; added: string[]; removed: string[] } };
};

// The full metrics (filtered per checker, exhausted per dimension, per-scorer scores) are in --json.
function runnersUp(m: Metrics): string {
  return m.candidates
    .slice(1)
    .map((c) => `${c.nodeId} ${c.score.toFixed(3)}`)
    .join(", ");
}

function formatVersionPlan(v: NonNullable<Plan["version"]>): string[] {
  if (v.diff.identical) return [`unchanged: version ${v.fromVersion} is running as in this file (submitting it does nothing)`];
  const i = v.instances;
  const what = [`${i.replaced.length} replaced`, `${i.updatedInPlace.length} updated in place`, `${i.added.length} added`, `${i.removed.length} removed`].join(", ");
  return [`changes against running version ${v.fromVersion}:`, formatFields(v.diff.fields), `instances: ${what}`, ...(i.replaced.length ? [`replaced: ${i.replaced.join(", ")}`] : []), ...(i.removed.length ? [`removed: ${i.removed.join(", ")}`] : [])];
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
  if (r.version) lines.unshift(...formatVersionPlan(r.version));
  return lines.join("\n");
}

export function registerPlan(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("plan")
    .description("dry run: where the job would go, or exactly why it cannot be placed; for a live job, the diff against its running version")
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
