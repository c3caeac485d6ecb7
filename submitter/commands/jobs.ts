/** Verbs on jobs: submit, jobs, status, kill. */
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { isTorcaError } from "../../src/common/errors.js";
import { withExamples, type CliContext } from "../context.js";
import { ago, progress, state, table } from "../format.js";
import { readTaskFile } from "../task-file.js";
import { parseTaskId, type MemberStatus } from "../../src/common/types.js";
import { memberRows, memberTable } from "./alloc-members.js";

export type JobSummary = { id: string; type: string; status: string; desired: string; instances: number; priority: number; submittedAt: number; tasks: Record<string, number> };
export type TaskView = { id: string; state: string; desired: string; attempt: number; nodeId?: string; exit?: { exitCode: number | null; reason: string }; reason?: string; updatedAt: number; startedAt?: number; finishedAt?: number; ports?: Record<string, number>; events: { at: number; type: string; message: string }[]; reclaimed?: boolean; members?: MemberStatus[] };
export type JobDetail = JobSummary & { taskList: TaskView[]; packageDigest?: string };

export function registerSubmit(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("submit")
    .description("submit a task description file; prints the job id")
    .argument("<file>", "task description (YAML or JSON)")
    .option("--wait", "wait until the job runs (services) or finishes (batch)")
    .option("--timeout <seconds>", "give up waiting after this long", "600");
  withExamples(cmd, ["torca submit config/examples/hello.yaml --wait", "torca submit web.yaml --json"]);
  cmd.action(async (file: string, o: { wait?: boolean; timeout: string }) => {
    const { text, contentType } = readTaskFile(file);
    const c = ctx.client();
    // One Idempotency-Key per invocation: the automatic retries across a failover cannot submit twice.
    const r = await c.postIdempotent<{ id: string; change?: string; message?: string }>("/v1/jobs", text, contentType);
    // A new job prints its id; a new version of a live one (or an unchanged one) says what happened.
    if (!o.wait) return ctx.out(r, () => (r.change && r.change !== "created" && r.message ? r.message : r.id));
    const json = Boolean(ctx.opts().json);
    if (!json) process.stderr.write(`submitted ${r.id}; waiting\n`);
    const deadline = Date.now() + Number(o.timeout) * 1000;
    for (;;) {
      let j: JobDetail;
      try {
        j = await c.get<JobDetail>(`/v1/jobs/${encodeURIComponent(r.id)}`);
      } catch (e) {
        // A backup may not have seen the new job yet (its copy follows by watch): ask again.
        if (isTorcaError(e) && e.code === "not_found" && Date.now() < deadline) {
          await sleep(100);
          continue;
        }
        throw e;
      }
      const running = j.tasks.running ?? 0;
      const done = (j.tasks.completed ?? 0) + (j.tasks.failed ?? 0) + (j.tasks.killed ?? 0) + (j.tasks.lost ?? 0);
      if (j.instances > 1 && !json) progress(j.type === "batch" ? "finished" : "running", j.type === "batch" ? done : running, j.instances);
      const finished = ["complete", "failed", "dead"].includes(j.status) || (j.type === "service" && running >= j.instances);
      if (finished) {
        ctx.out(j, () => `${j.id} ${state(j.status)}`);
        if (j.status === "failed") process.exitCode = 1;
        return;
      }
      if (Date.now() > deadline) {
        const reasons = [...new Set(j.taskList.map((t) => t.reason).filter(Boolean))];
        process.stderr.write(`timed out waiting for ${j.id} (status ${j.status})${reasons.length ? `: ${reasons.join("; ")}` : ""}\n`);
        process.exitCode = reasons.some((x) => x!.startsWith("no node fits")) ? 3 : 1;
        return;
      }
      await sleep(250);
    }
  });
}

export function registerJobs(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("jobs")
    .description("list jobs")
    .option("--status <status>", "only jobs with this status")
    .action(async (o: { status?: string }) => {
      const r = await ctx.client().get<{ jobs: JobSummary[] }>(`/v1/jobs${o.status ? `?status=${encodeURIComponent(o.status)}` : ""}`);
      ctx.out(r.jobs, () =>
        table(
          ["job", "type", "status", "tasks", "submitted"],
          r.jobs.map((j) => [j.id, j.type, state(j.status), Object.entries(j.tasks).map(([k, v]) => `${v} ${k}`).join(", ") || "-", ago(j.submittedAt)]),
        ),
      );
    });
  withExamples(cmd, ["torca jobs", "torca jobs --status running --json"]);
}

export function registerStatus(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("status")
    .description("a job's status and its tasks, or one task's (TASK is job/index; an alloc's lists its members)")
    .argument("<job-or-task>")
    .action(async (id: string) => {
      if (parseTaskId(id)) return taskStatus(ctx, id);
      const j = await ctx.client().get<JobDetail>(`/v1/jobs/${encodeURIComponent(id)}`);
      ctx.out(j, () =>
        [
          `job ${j.id}: ${state(j.status)} (${j.type}, priority ${j.priority}, ${j.instances} instance${j.instances === 1 ? "" : "s"})`,
          table(
            ["task", "state", "node", "attempt", "exit", "updated", "reason"],
            // "(reclaimed)": on capacity lent by prod tasks, given back by throttling, then eviction (docs/reclamation.md).
            j.taskList.flatMap((t) => [[t.id, state(t.state), t.nodeId ? `${t.nodeId}${t.reclaimed ? " (reclaimed)" : ""}` : "-", t.attempt, t.exit ? String(t.exit.exitCode ?? t.exit.reason) : "-", ago(t.updatedAt), t.reason ?? ""], ...memberRows(t.members, 7)]),
          ),
        ].join("\n"),
      );
    });
  withExamples(cmd, ["torca status hello", "torca status web-frontend --json", "torca status web-frontend/0"]);
}

/** One task: its state and, for an alloc, each member's state, exit and OOM. */
async function taskStatus(ctx: CliContext, id: string): Promise<void> {
  const t = await ctx.client().get<TaskView>(`/v1/tasks/${encodeURIComponent(id)}`);
  ctx.out(t, () =>
    [
      `task ${t.id}: ${state(t.state)} on ${t.nodeId ?? "-"} (attempt ${t.attempt})${t.exit ? `, ${t.exit.reason}` : ""}${t.reason ? `; ${t.reason}` : ""}`,
      ...(t.members ? [memberTable(t.members)] : []),
    ].join("\n"),
  );
}

export function registerKill(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("kill")
    .description("stop every task of a job")
    .argument("<job>")
    .action(async (id: string) => {
      const r = await ctx.client().delete<{ id: string; status: string }>(`/v1/jobs/${encodeURIComponent(id)}`);
      ctx.out(r, () => `${r.id}: stopping`);
    });
  withExamples(cmd, ["torca kill web-frontend"]);
}
