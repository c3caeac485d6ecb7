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
