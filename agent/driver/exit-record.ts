/**
 * The exit record a wrapper leaves in the task dir, and its translation to ExitInfo.
 *
 * `exit` holds key=value words written by the host-side wrapper in one line:
 * final cgroup figures when the wrapper could read them, then `code`, the
 * wrapper shell's $? for the task (128+N when the task died of signal N). The
 * record is complete once it has `code` (wrappers of earlier versions wrote one
 * pair per line, `code` first, and renamed the file into place). The LXC stop hook writes
 * the same figures to `cgstats`, because the container's cgroup is gone by the
 * time lxc-execute returns.
 */
import { readFile } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import type { ExitInfo } from "../../src/common/types.js";
import type { FinalUsage } from "./driver.js";

export const EXIT_FILE = "exit";
export const CGSTATS_FILE = "cgstats";

const signalNames = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.signals)) {
  if (!signalNames.has(num)) signalNames.set(num, name);
}

export function signalNameOf(num: number): string | undefined {
  return signalNames.get(num);
}

export interface ExitRecord {
  code: number;
  usage: FinalUsage;
}

/** key=value words, separated by spaces or line breaks (values are numbers). */
function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const word of text.split(/\s+/)) {
    const eq = word.indexOf("=");
    if (eq > 0) out.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return out;
}

function numberOf(kv: Map<string, string>, key: string): number | undefined {
  const raw = kv.get(key);
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** The task's exit record, or undefined while it has not exited (no `exit` file yet, or no `code` in it yet). */
export async function readExitRecord(taskDir: string): Promise<ExitRecord | undefined> {
  const exitText = await readOptional(join(taskDir, EXIT_FILE));
  if (exitText === undefined) return undefined;
  const kv = parseKeyValues(exitText);
  if (!kv.has("code")) return undefined;
  // The stop hook's figures (lxc) complete what the wrapper could not read itself.
  const cgText = kv.has("cpu_ns") ? undefined : await readOptional(join(taskDir, CGSTATS_FILE));
  if (cgText !== undefined) for (const [k, v] of parseKeyValues(cgText)) if (!kv.has(k)) kv.set(k, v);
  const code = numberOf(kv, "code");
  return {
    code: code === undefined ? -1 : code,
    usage: {
      cpuNs: numberOf(kv, "cpu_ns"),
      memoryPeakBytes: numberOf(kv, "mem_peak"),
      memoryFailcnt: numberOf(kv, "mem_failcnt"),
      oomKills: numberOf(kv, "oom_kill"),
    },
  };
}

/**
 * ExitInfo from an exit record. exitCode keeps the raw shell status (so 137 stays
 * visible); signal is set when the status means "killed by signal N" (128+N).
 * A task that itself calls exit(128+N) is indistinguishable; that is the shell's
 * convention and LXC's (docs/lxc-and-zookeeper.md, LXC 5).
 */
export function exitInfoOf(rec: ExitRecord): ExitInfo {
  const oomKilled = (rec.usage.oomKills ?? 0) > 0;
  if (rec.code < 0) return { exitCode: null, signal: null, oomKilled, reason: oomKilled ? "oom-killed" : "exit status unreadable" };
  const sig = rec.code > 128 && rec.code < 128 + 65 ? signalNameOf(rec.code - 128) : undefined;
  if (oomKilled) return { exitCode: rec.code, signal: sig ?? null, oomKilled: true, reason: "oom-killed" };
  if (sig !== undefined) return { exitCode: rec.code, signal: sig, oomKilled: false, reason: `killed by ${sig}` };
  return { exitCode: rec.code, signal: null, oomKilled: false, reason: `exit ${rec.code}` };
}

/** The wrapper vanished without writing `exit` (killed, or the machine rebooted). */
export function lostExitInfo(why: string): ExitInfo {
  return { exitCode: null, signal: null, oomKilled: false, reason: `exit status lost: ${why}` };
}
