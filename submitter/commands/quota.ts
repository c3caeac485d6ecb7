/** Verbs on namespace quotas: quota [NS], quota set NS …, quota remove NS. */
import { Readable } from "node:stream";
import type { Command } from "commander";
import { ValidationError } from "../../src/common/errors.js";
import { formatBytes } from "../../src/common/units.js";
import { coresText } from "../../src/manager/quota/admission.js";
import { withExamples, type CliContext } from "../context.js";
import { table } from "../format.js";

type Amounts = { cpu: number; memory: number; instances: number };
type Limits = { cpu: number; memory: number; instances: number | null };
type QuotaView = { namespace: string; quota: { prod: Limits; batch: Limits } | null; used: { prod: Amounts; batch: Amounts }; setAt?: number; setBy?: string };

const BANDS = ["prod", "batch"] as const;

function against(used: string, limit: string | undefined): string {
  return `${used} / ${limit ?? "unlimited"}`;
}

/** One row per namespace and band: what its live jobs hold against its quota. */
function quotaTable(views: QuotaView[]): string {
  if (views.length === 0) return "no quotas set and no namespace holds resources: every namespace is unlimited";
  return table(
    ["namespace", "band", "cpu", "memory", "instances"],
    views.flatMap((v) =>
      BANDS.map((b) => {
        const u = v.used[b];
        const q = v.quota?.[b];
        return [v.namespace, b, against(coresText(u.cpu), q && coresText(q.cpu)), against(formatBytes(u.memory), q && formatBytes(q.memory)), against(String(u.instances), q?.instances == null ? undefined : String(q.instances))];
      }),
    ),
  );
}

function instancesOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,7}$/.test(text)) throw new ValidationError([{ field: "--instances", message: `"${text}" is not a number of instances` }]);
  return Number(text);
}

export function registerQuota(program: Command, ctx: CliContext): void {
  const quota = program
    .command("quota")
    .description("use against quota per namespace and priority band (prod: priority 200 and above; batch: below)")
    .argument("[namespace]", "one namespace (default: every namespace you may read that has a quota or holds resources)")
    .action(async (ns?: string) => {
      if (ns !== undefined) {
        const r = await ctx.client().get<QuotaView>(`/v1/quotas/${encodeURIComponent(ns)}`);
        return ctx.out(r, () => quotaTable([r]));
      }
      const r = await ctx.client().get<{ quotas: QuotaView[] }>("/v1/quotas");
      ctx.out(r.quotas, () => quotaTable(r.quotas));
    });
  withExamples(quota, ["torca quota", "torca quota team-a --json"]);

  const set = quota
    .command("set")
    .description("set a namespace's quota (admin token needed); prod quotas together may not exceed the cell's capacity")
    .argument("<namespace>")
    .requiredOption("--prod-cpu <cores>", "cores for jobs of priority 200 and above (0.5, 500m)")
    .requiredOption("--prod-memory <size>", "memory for prod jobs (e.g. 32GiB)")
    .requiredOption("--batch-cpu <cores>", "cores for jobs below priority 200")
    .requiredOption("--batch-memory <size>", "memory for batch jobs")
    .option("--instances <n>", "task instances in each band (default: any number)")
    .action(async (ns: string, o: { prodCpu: string; prodMemory: string; batchCpu: string; batchMemory: string; instances?: string }) => {
      const instances = instancesOf(o.instances);
      const band = (cpu: string, memory: string) => ({ cpu, memory, instances: instances ?? null });
      const body = JSON.stringify({ prod: band(o.prodCpu, o.prodMemory), batch: band(o.batchCpu, o.batchMemory) });
      const r = await ctx.client().put<QuotaView>(`/v1/quotas/${encodeURIComponent(ns)}`, () => Readable.from([body]), "application/json");
      ctx.out(r, () => quotaTable([r]));
    });
  withExamples(set, ["torca quota set team-a --prod-cpu 8 --prod-memory 32GiB --batch-cpu 16 --batch-memory 64GiB", "torca quota set team-b --prod-cpu 0 --prod-memory 0 --batch-cpu 4 --batch-memory 8GiB --instances 20"]);

  const remove = quota
    .command("remove")
    .description("remove a namespace's quota: it is unlimited again (admin token needed)")
    .argument("<namespace>")
    .action(async (ns: string) => {
      const r = await ctx.client().delete<QuotaView>(`/v1/quotas/${encodeURIComponent(ns)}`);
      ctx.out(r, () => `namespace ${r.namespace}: quota removed, unlimited`);
    });
  withExamples(remove, ["torca quota remove team-a"]);
}
