/** Verbs on credentials: token create|list|revoke, audit (admin only). */
import type { Command } from "commander";
import { withExamples, type CliContext } from "../context.js";
import { ago, table } from "../format.js";

type TokenInfo = { name: string; role: string; namespaces: string[]; createdAt: number; createdBy: string; expiresAt?: number };
type CreatedToken = { name: string; token: string; namespaces: string[]; role: string; expiresAt: number | null };
type AuditEntry = { at: number; who: string; role?: string; method: string; path: string; status: number; from: string; manager: string };

/** `--namespace a --namespace b` and `--namespace a,b` both give [a, b]. */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((s) => s.trim()).filter(Boolean)];
}

function expiry(at: number | null | undefined): string {
  return at ? new Date(at).toISOString() : "never";
}

export function registerTokens(program: Command, ctx: CliContext): void {
  const token = program.command("token").description("API tokens limited to namespaces (admin token needed)");

  const create = token
    .command("create")
    .description("create a token; its secret is printed once and stored only as a digest")
    .requiredOption("--name <name>", "unique name, shown in 403s and the audit log")
    .requiredOption("--namespace <ns>", "a namespace the token may use (repeat, or separate with commas)", collect)
    .requiredOption("--role <role>", "read or submit")
    .option("--ttl <duration>", "expire after this long, e.g. 30d or 12h (default: never)")
    .action(async (o: { name: string; namespace: string[]; role: string; ttl?: string }) => {
      const r = await ctx.client().post<CreatedToken>("/v1/tokens", { name: o.name, role: o.role, namespaces: o.namespace, ...(o.ttl ? { ttl: o.ttl } : {}) });
      ctx.out(r, () => `${r.token}\n\ntoken "${r.name}": role ${r.role} in ${r.namespaces.join(", ")}, expires ${expiry(r.expiresAt)}. The secret above is not shown again.`);
    });
  withExamples(create, ["torca token create --name ci-team-a --namespace team-a --role submit --ttl 30d", "torca token create --name dash --namespace a,b --role read --json"]);

  const list = token
    .command("list")
    .description("tokens created with token create (never their secrets)")
    .action(async () => {
      const r = await ctx.client().get<{ tokens: TokenInfo[] }>("/v1/tokens");
      ctx.out(r.tokens, () =>
        table(
          ["name", "role", "namespaces", "created", "by", "expires"],
          r.tokens.map((t) => [t.name, t.role, t.namespaces.join(","), ago(t.createdAt), t.createdBy, t.expiresAt ? (t.expiresAt <= Date.now() ? "expired" : expiry(t.expiresAt)) : "never"]),
        ),
      );
    });
  withExamples(list, ["torca token list", "torca token list --json"]);

  const revoke = token
    .command("revoke")
    .description("revoke a token: every manager refuses it within a second")
    .argument("<name>")
    .action(async (name: string) => {
      const r = await ctx.client().delete<{ name: string; revoked: boolean }>(`/v1/tokens/${encodeURIComponent(name)}`);
      ctx.out(r, () => `token "${r.name}" revoked`);
    });
  withExamples(revoke, ["torca token revoke ci-team-a"]);

  const audit = program
    .command("audit")
    .description("the audit log: every mutating API call, newest first (admin token needed)")
    .option("--limit <n>", "how many entries (at most 1000)", "50")
    .action(async (o: { limit: string }) => {
      const r = await ctx.client().get<{ entries: AuditEntry[] }>(`/v1/audit?limit=${encodeURIComponent(o.limit)}`);
      ctx.out(r.entries, () =>
        table(
          ["when", "who", "call", "status", "from", "manager"],
          r.entries.map((e) => [new Date(e.at).toISOString(), e.role ? `${e.who} (${e.role})` : e.who, `${e.method} ${e.path}`, e.status, e.from, e.manager]),
        ),
      );
    });
  withExamples(audit, ["torca audit", "torca audit --limit 200 --json"]);
}
