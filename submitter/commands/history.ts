/** Verbs on finished work: history (finished jobs, one job's runs) and usage (totals, like sreport). */
import type { Command } from "commander";
import { ValidationError } from "../../src/common/errors.js";
import type { FinishedPage, JobView, UsageRow } from "../../src/history/queries.js";
import { formatBytes } from "../../src/common/units.js";
import { withExamples, type CliContext } from "../context.js";
import { ago, state, table } from "../format.js";
import { formatFields, type FieldChange } from "./deployments.js";

/** A version as the history answers it: archived ones carry less (no deployment, no diff). */
type VersionRow = { version: number; submittedAt: number; running?: boolean; revertOf?: number; deployment?: { status: string; description: string }; diff?: { fields: FieldChange[] } };
type HistoryOfJob = JobView & { live: { id: string; status: string; tasks: Record<string, number> } | null };

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

function registerHistoryVerb(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("history")
    .description("finished jobs from the history store, newest first; with JOB: its versions, runs, tasks and events")
    .argument("[job]", "a job id (NAME or NS:NAME)")
    .option("--namespace <ns>", "only this namespace")
    .option("--since <duration>", "finished within this long (e.g. 24h, 7d)")
    .option("--state <state>", "complete, failed or dead")
    .option("--limit <n>", "jobs per page (1-1000)", "50")
    .option("--all", "every page, not just the first")
    .option("--diff", "with JOB: each version's changes against the one before it");
  withExamples(cmd, ["torca history --since 24h --state failed", "torca history nightly-report --json", "torca history web --diff", "torca history --namespace ml --all --json"]);
  cmd.action(async (job: string | undefined, o: { namespace?: string; since?: string; state?: string; limit: string; all?: boolean; diff?: boolean }) => {
    const c = ctx.client();
    if (job) {
      const r = await c.get<HistoryOfJob>(`/v1/history/${encodeURIComponent(job)}${o.diff ? "?diff=1" : ""}`);
      return ctx.out(r, () => {
        const head = r.live ? `${job}: live (${state(r.live.status)})` : `${job}: archived`;
        const rows = r.runs.flatMap((run) =>
          run.tasks.map((t) => [run.run, state(run.status), t.id, t.state, t.exit?.reason ?? "-", t.node ?? "-", t.usage.cpuSeconds.toFixed(2), formatBytes(t.usage.peakMemoryBytes), ago(t.finishedAt)]),
        );
        const versions = (r.versions as VersionRow[]).map((v) => {
          const line = `version ${v.version}${v.running ? " (running)" : ""}${v.revertOf !== undefined ? `, revert of ${v.revertOf}` : ""}: submitted ${ago(v.submittedAt)}${v.deployment ? `, deployment ${state(v.deployment.status)}: ${v.deployment.description}` : ""}`;
          return v.diff?.fields.length ? `${line}\n${formatFields(v.diff.fields)}` : line;
        });
        const runs = rows.length ? `\n${table(["run", "status", "task", "state", "exit", "node", "cpu s", "peak mem", "finished"], rows)}` : "";
        return `${head}; ${r.versions.length} version(s), ${r.runs.length} archived run(s)\n${versions.join("\n")}${runs}`;
      });
    }
    if (o.state && !["complete", "failed", "dead"].includes(o.state)) throw new ValidationError([{ field: "--state", message: "must be complete, failed or dead" }]);
    const items: FinishedPage["items"] = [];
    let cursor: string | undefined;
    do {
      const page = await c.get<FinishedPage>(`/v1/history${query({ namespace: o.namespace, since: o.since, state: o.state, limit: o.limit, cursor })}`);
      items.push(...page.items);
      cursor = page.next;
    } while (o.all && cursor);
    ctx.out(items, () => table(["job", "run", "type", "status", "tasks", "finished"], items.map((i) => [i.jobId, i.run, i.type, state(i.status), i.tasks, ago(i.finishedAt)])));
  });
}

function registerUsageVerb(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("usage")
    .description("resource totals of finished tasks from the history store (like sreport)")
    .option("--by <key>", "namespace, job or node", "namespace")
    .option("--since <duration>", "finished within this long", "7d")
    .option("--namespace <ns>", "only this namespace");
  withExamples(cmd, ["torca usage --by node --since 24h", "torca usage --by job --namespace ml --json"]);
  cmd.action(async (o: { by: string; since: string; namespace?: string }) => {
    if (!["namespace", "job", "node"].includes(o.by)) throw new ValidationError([{ field: "--by", message: "must be namespace, job or node" }]);
    const rows = await ctx.client().get<UsageRow[]>(`/v1/usage${query({ by: o.by, since: o.since, namespace: o.namespace })}`);
    ctx.out(rows, () =>
      table(
        [o.by, "tasks", "cpu s", "memory GiB·h", "wall s"],
        rows.map((u) => [u.key, u.tasks, u.cpuSeconds.toFixed(1), (u.memoryByteSeconds / 2 ** 30 / 3600).toFixed(3), u.wallSeconds.toFixed(1)]),
      ),
    );
  });
}

export function registerHistory(program: Command, ctx: CliContext): void {
  registerHistoryVerb(program, ctx);
  registerUsageVerb(program, ctx);
}
