import { readFileSync } from "node:fs";

/**
 * Whether a process with this PID exists: signal 0 checks existence and
 * delivers nothing. EPERM means it exists under another user (a task uid),
 * which still counts as alive.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * When process `pid` started, in clock ticks since boot (field 22 of
 * /proc/PID/stat); undefined when there is no such process or it has exited
 * and awaits reaping (a zombie). A PID names a process only together with
 * its start time: the kernel reuses PIDs, never this pair.
 */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces or ")": fields resume after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : undefined;
}
