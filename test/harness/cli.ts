import { spawn } from "node:child_process";
import { resolve } from "node:path";

/** The `torca` launcher of this checkout. */
export const TORCA_BIN = resolve(new URL("../../../bin/torca.js", import.meta.url).pathname);

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `torca ARGS` as a real process (killed after `timeoutMs`), with extra environment and, if given, `input` on its stdin. */
export function runTorca(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000, input?: string): Promise<CliResult> {
  return new Promise((resolveP, reject) => {
    const child = spawn(process.execPath, [TORCA_BIN, ...args], {
      env: { ...process.env, ...env, NODE_TEST_CONTEXT: undefined, NO_COLOR: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdin.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(t);
      resolveP({ code, stdout, stderr });
    });
  });
}
