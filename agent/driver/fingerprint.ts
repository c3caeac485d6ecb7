/** Host attributes every driver reports, and a lookup of executables. */
import { execFile } from "node:child_process";
import { access, constants as fsConstants } from "node:fs/promises";
import { arch, cpus, hostname, platform, release, totalmem } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export function hostAttributes(): Record<string, string> {
  return {
    os: platform(),
    arch: arch(),
    kernel: release(),
    hostname: hostname(),
    "cpu.cores": String(cpus().length),
    "memory.bytes": String(totalmem()),
  };
}

/** Full path of an executable found in PATH (or the usual sbin dirs), or undefined. */
export async function findExecutable(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? "").split(":").filter(Boolean), "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      await access(p, fsConstants.X_OK);
      return p;
    } catch {
      // not in this dir
    }
  }
  return undefined;
}

/** First line of `cmd args` stdout, or undefined when it fails (bounded by a timeout). */
export async function firstLineOf(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { timeout: 5000 });
    return stdout.split("\n")[0]?.trim() || undefined;
  } catch {
    return undefined;
  }
}

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}
