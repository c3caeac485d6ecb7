/** Verbs on a job's tasks: tasks (with their events) and logs. */
import type { Command } from "commander";
import { withExamples, type CliContext } from "../context.js";
import { state } from "../format.js";
import type { JobDetail, TaskView } from "./jobs.js";
import { checkLogMember } from "../../src/common/alloc.js";

export function registerTasks(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("tasks")
    .description("a job's task instances with their events")
    .argument("<job>")
    .action(async (id: string) => {
      const j = await ctx.client().get<JobDetail>(`/v1/jobs/${encodeURIComponent(id)}`);
      ctx.out(j.taskList, () => j.taskList.map((t) => `${t.id}  ${state(t.state)}  ${t.nodeId ?? "-"}\n${t.events.map((e) => `  ${new Date(e.at).toISOString()}  ${e.type}: ${e.message}`).join("\n")}`).join("\n"));
    });
  withExamples(cmd, ["torca tasks web-frontend"]);
}

export function registerLogs(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("logs")
    .description("a task's output (TASK is job/index, e.g. hello/0; an alloc's: one member's, with --member)")
    .argument("<task>")
    .option("-f, --follow", "keep streaming until the task exits")
    .option("--stderr", "stderr instead of stdout")
    .option("--tail <lines>", "only the last N lines")
    .option("--member <name>", "an alloc's task (see docs/allocs.md)")
    .action(async (task: string, o: { follow?: boolean; stderr?: boolean; tail?: string; member?: string }) => {
      const q = new URLSearchParams({ stream: o.stderr ? "stderr" : "stdout" });
      if (o.member) q.set("member", o.member);
      if (o.follow) q.set("follow", "1");
      if (o.tail) q.set("tail", o.tail);
      const c = ctx.client();
      // Clear errors before streaming: an unknown task, or an alloc's without --member.
      const t = await c.get<TaskView>(`/v1/tasks/${encodeURIComponent(task)}`);
      checkLogMember(t.id, t.members?.map((m) => m.name), o.member);
      await new Promise<void>((resolveP, reject) => {
        const s = c.stream(`/v1/tasks/${encodeURIComponent(task)}/logs?${q}`);
        s.on("error", reject);
        s.on("end", () => resolveP());
        s.pipe(process.stdout, { end: false });
      });
    });
  withExamples(cmd, ["torca logs hello/0", "torca logs web-frontend/2 -f --stderr", "torca logs batch/0 --tail 50", "torca logs web/0 --member sidecar"]);
}
