/** `torca alerts`: the alert history. */
import type { Command } from "commander";
import { withExamples, type CliContext } from "../context.js";
import { ago, state, table } from "../format.js";

type AlertDelivery = { id: string; key: string; kind: string; channel: string; to: string; status: string; attempts: number; lastError?: string; createdAt: number; message: { subject: string } };

export function registerAlerts(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("alerts")
    .description("alert history: one line per message (incident × recipient), newest first")
    .option("--limit <n>", "how many", "50")
    .action(async (o: { limit: string }) => {
      const r = await ctx.client().get<{ alerts: AlertDelivery[] }>(`/v1/alerts?limit=${encodeURIComponent(o.limit)}`);
      ctx.out(r.alerts, () =>
        table(
          ["when", "kind", "to", "status", "tries", "subject"],
          r.alerts.map((a) => [ago(a.createdAt), a.kind, `${a.channel}:${a.to}`, state(a.status) + (a.lastError && a.status !== "sent" ? ` (${a.lastError.slice(0, 60)})` : ""), a.attempts, a.message.subject]),
        ),
      );
    });
  withExamples(cmd, ["torca alerts", "torca alerts --json"]);
}
