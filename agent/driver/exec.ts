/**
 * `torca exec`: a command run beside a running task, in the task's own
 * context — its user, its working directory, its environment, and its cgroup
 * (process driver) or its container's namespaces (lxc driver, lxc-attach). A
 * driver only says how to start it (ExecCommand); the agent's exec session
 * (agent/http/exec.ts) spawns it and relays its streams.
 */
import { shQuote } from "./wrapper.js";

/** Who the command runs as and where, taken from the task's record. */
export interface ExecContext {
  command: string[];
  /** The task's environment, as it was started with. */
  env: Record<string, string>;
  /** The task's unpacked package (its cwd) when it has one; else its work dir. */
  packageDir?: string;
  user?: { uid: number; gid: number };
}

/** How to start an exec'd command on the host. */
export interface ExecCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * Process driver: enter the task's cgroups (so the command counts against
 * its limits and dies with it), change to its cwd, drop to its user.
 * Positional args: cgroupRoot cgroupName uid gid cwd command...
 */
export const PROCESS_EXEC_SH = `r=$1 g=$2 u=$3 gi=$4 cwd=$5
shift 5
cd "$cwd" || exit 126
if [ -n "$r" ]; then
  for c in memory pids cpu cpuacct; do echo 0 >"$r/$c/$g/cgroup.procs" || exit 125; done
fi
if [ -n "$u" ]; then exec /usr/bin/setpriv --reuid="$u" --regid="$gi" --clear-groups --no-new-privs -- "$@"; fi
exec "$@"`;

/** Inside the container: the task's cwd, then the command. Positional args: cwd command... */
export const LXC_EXEC_SH = `cd "$1" || exit 126
shift
exec "$@"`;

/**
 * The same command under a pseudo-terminal: util-linux script(1) allocates it
 * on the host and relays it (stdout and stderr merge, as with ssh -t); -e
 * keeps the command's exit status. The terminal's size is set inside before
 * the command starts; later size changes are not relayed.
 */
export function underTerminal(cmd: ExecCommand, t: { rows?: number; cols?: number; term?: string }): ExecCommand {
  const size = t.rows !== undefined && t.cols !== undefined ? `stty rows ${t.rows} cols ${t.cols} 2>/dev/null; ` : "";
  const line = `${size}exec ${[cmd.file, ...cmd.args].map(shQuote).join(" ")}`;
  return { file: "/usr/bin/script", args: ["-q", "-f", "-e", "-c", line, "/dev/null"], env: { ...cmd.env, SHELL: "/bin/sh", TERM: t.term ?? "xterm" } };
}
