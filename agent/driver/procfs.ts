/**
 * Small /proc helpers for finding and signalling a task's processes. /proc is
 * read synchronously: its files are made by the kernel on the spot and never
 * wait for a disk, and a read on the thread pool costs the agent several
 * times more (open, stat, read, close, each handed over and back).
 */
import { readFileSync, readlinkSync } from "node:fs";

async function readProc(path: string): Promise<string | undefined> {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** argv of a live process; undefined when it is gone (a zombie has an empty cmdline, also undefined). */
export async function cmdlineOf(pid: number): Promise<string[] | undefined> {
  const raw = await readProc(`/proc/${pid}/cmdline`);
  if (!raw) return undefined;
  return raw.split("\0").slice(0, -1);
}

/** The working directory of a live process; undefined when it is gone or not readable. */
export async function cwdOf(pid: number): Promise<string | undefined> {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** Direct children of a single-threaded process (the wrapper shells are). */
export async function childrenOf(pid: number): Promise<number[]> {
  const raw = await readProc(`/proc/${pid}/task/${pid}/children`);
  if (!raw) return [];
  return raw.trim().split(/\s+/).filter(Boolean).map(Number);
}

/** The pid as seen in the process's innermost pid namespace (1 = a container's init). */
export async function innermostPidOf(pid: number): Promise<number | undefined> {
  const status = await readProc(`/proc/${pid}/status`);
  const line = status?.split("\n").find((l) => l.startsWith("NSpid:"));
  if (!line) return undefined;
  const fields = line.slice("NSpid:".length).trim().split(/\s+/);
  return Number(fields[fields.length - 1]);
}

/** kill(2) that treats "no such process" as done. Negative pid = process group. */
export function killQuietly(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw e;
  }
}
