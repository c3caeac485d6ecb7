/** Verbs on machines: nodes, node confirm-lost, drain. */
import type { Command } from "commander";
import { formatBytes } from "../../src/common/units.js";
import { withExamples, type CliContext } from "../context.js";
import { ago, state, table } from "../format.js";

type NodeView = { id: string; state: string; host: string; allocatable: { cpu: number; memory: number }; tasks: string[]; drivers: { lxc: boolean }; lastReportAt: number };

export function registerNodes(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("nodes")
    .description("machines in the cell")
    .action(async () => {
      const r = await ctx.client().get<{ nodes: NodeView[] }>("/v1/nodes");
      ctx.out(r.nodes, () =>
        table(
          ["node", "state", "host", "cpu", "memory", "tasks", "drivers", "reported"],
          r.nodes.map((n) => [n.id, state(n.state), n.host, n.allocatable.cpu, formatBytes(n.allocatable.memory), n.tasks.length, n.drivers.lxc ? "lxc,process" : "process", ago(n.lastReportAt)]),
        ),
      );
    });
  withExamples(cmd, ["torca nodes", "torca nodes --json"]);
  const node = program.command("node").description("act on one machine");
  const confirm = node
    .command("confirm-lost")
    .description("declare a disconnected node gone for good: its tasks migrate now, even while migrations are held (admin)")
    .argument("<node>")
    .action(async (id: string) => {
      const r = await ctx.client().post<{ id: string; tasks: number }>(`/v1/nodes/${encodeURIComponent(id)}/confirm-lost`, {});
      ctx.out(r, () => `${r.id}: lost; ${r.tasks} task(s) migrating`);
    });
  withExamples(confirm, ["torca node confirm-lost agent-3"]);
}

export function registerDrain(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("drain")
    .description("stop placing work on a node and migrate its tasks away")
    .argument("<node>")
    .option("--undo", "make the node eligible again")
    .action(async (node: string, o: { undo?: boolean }) => {
      const r = await ctx.client().post<{ id: string; draining: boolean }>(`/v1/nodes/${encodeURIComponent(node)}/drain`, { undo: Boolean(o.undo) });
      ctx.out(r, () => `${r.id}: ${r.draining ? "draining" : "eligible"}`);
    });
  withExamples(cmd, ["torca drain agent-3", "torca drain agent-3 --undo"]);
}
