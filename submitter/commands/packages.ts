/** Verbs on shared storage: push (pack and upload a directory) and packages. */
import { createReadStream, statSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { formatBytes } from "../../src/common/units.js";
import { withExamples, type CliContext } from "../context.js";
import { ago, progress, table } from "../format.js";

export function registerPush(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("push")
    .description("pack DIR as tar.gz and upload it to shared storage")
    .argument("<dir>")
    .requiredOption("--name <name>", "package name")
    .requiredOption("--version <version>", "package version")
    .action(async (dir: string, o: { name: string; version: string }) => {
      const { packDirectoryToFile } = await import("../../src/storage/pack.js");
      const { mkdtempSync, rmSync } = await import("node:fs");
      const { tmpdir } = await import("node:os");
      const tmp = mkdtempSync(resolve(tmpdir(), "torca-push-"));
      try {
        const file = resolve(tmp, "package.tar.gz");
        await packDirectoryToFile(resolve(dir), file);
        const size = statSync(file).size;
        const r = await ctx.client().put<{ digest: string; size: number }>(`/v1/packages/${encodeURIComponent(o.name)}/${encodeURIComponent(o.version)}`, () => createReadStream(file), "application/gzip", (sent) =>
          ctx.opts().json ? undefined : progress("upload", sent, size),
        );
        ctx.out(r, () => `${o.name}@${o.version} ${r.digest} (${formatBytes(r.size ?? size)})`);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  withExamples(cmd, ["torca push ./build --name webapp --version 1.2.0"]);
}

export function registerPackages(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("packages")
    .description("packages in shared storage")
    .action(async () => {
      const r = await ctx.client().get<{ packages: { name: string; version: string; digest: string; size: number; pushedAt: number }[] }>("/v1/packages");
      ctx.out(r.packages, () => table(["package", "digest", "size", "pushed"], r.packages.map((p) => [`${p.name}@${p.version}`, p.digest.slice(0, 19), formatBytes(p.size), ago(p.pushedAt)])));
    });
  withExamples(cmd, ["torca packages"]);
}
