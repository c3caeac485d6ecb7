/**
 * The host-side /bin/sh wrappers that own each task's exit status (notes 1.7).
 *
 * The agent spawns the wrapper detached (own session, stdio to taskDir/stdout and
 * stderr opened O_APPEND) and forgets about it: if the agent dies, the wrapper is
 * reparented and still writes `exit` when the task ends. A shell rather than a Node
 * process per task because it costs ~1 MB and a millisecond, not 40 MB and 50 ms.
 * Everything after the task ends uses shell builtins except the final `mv`.
 */
import { spawn } from "node:child_process";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ExitInfo } from "../../src/common/types.js";
import { DriverError } from "../../src/common/errors.js";
import { EXIT_FILE, exitInfoOf, lostExitInfo, readExitRecord } from "./exit-record.js";
import { cmdlineOf } from "./procfs.js";

/** $0 of every wrapper; with the task dir in argv it identifies a wrapper despite pid reuse. */
export const WRAPPER_ARGV0 = "torca-wrap";

/**
 * Shell lines that append the final figures of cgroup "$g" (relative to the
 * controller mounts under "$r") to stdout: peak memory, memory limit hits, OOM
 * kills (memory.oom_control counts kills of processes *in* that cgroup), CPU time.
 */
export const CGROUP_FIGURES_SH = `m="$r/memory/$g"
read -r v <"$m/memory.max_usage_in_bytes" && echo "mem_peak=$v"
read -r v <"$m/memory.failcnt" && echo "mem_failcnt=$v"
while read -r k v; do [ "$k" = oom_kill ] && echo "oom_kill=$v"; done <"$m/memory.oom_control"
read -r v <"$r/cpuacct/$g/cpuacct.usage" && echo "cpu_ns=$v"`;

/**
 * Process driver: args taskDir cgroupRoot cgroupRel uid gid argv...
 * (empty cgroupRoot = no cgroup, empty uid = keep the wrapper's user).
 * The subshell joins the task cgroups (writing 0 to cgroup.procs moves the writer)
 * and then execs setsid, which does not fork because the subshell is not a group
 * leader: so the task is the wrapper's direct child, leads its own process group
 * (pgid = its pid) and the wrapper's $? is the task's own status.
 */
export const PROCESS_WRAPPER_SH = `d=$1 r=$2 g=$3 u=$4 gi=$5
shift 5
(
  if [ -n "$r" ]; then
    { echo 0 >"$r/memory/$g/cgroup.procs" && echo 0 >"$r/pids/$g/cgroup.procs" && echo 0 >"$r/cpu/$g/cgroup.procs" && echo 0 >"$r/cpuacct/$g/cgroup.procs"; } || exit 125
  fi
  if [ -n "$u" ]; then exec setpriv --reuid="$u" --regid="$gi" --clear-groups setsid -- "$@"; fi
  exec setsid -- "$@"
)
c=$?
{
  echo "code=$c"
  if [ -n "$r" ]; then
${CGROUP_FIGURES_SH}
  fi
} >"$d/exit.tmp" 2>/dev/null
mv -f "$d/exit.tmp" "$d/exit"
`;

/**
 * LXC driver: args taskDir lxc-execute-args... The exit status of lxc-execute is the
 * task's (128+N for signal N; 1 also when the container failed to start, notes 1.5).
 * Final cgroup figures come from the stop hook (cgstats), since the container's
 * cgroup is removed before lxc-execute returns.
 */
export const LXC_WRAPPER_SH = `d=$1
shift
lxc-execute "$@"
c=$?
echo "code=$c" >"$d/exit.tmp" && mv -f "$d/exit.tmp" "$d/exit"
`;

export interface SpawnedWrapper {
  pid: number;
  /** Resolves when the wrapper exits (its `exit` file is written by then). */
  exited: Promise<void>;
}

/** Spawns a wrapper detached, stdio appended to taskDir/stdout and taskDir/stderr. */
export async function spawnWrapper(script: string, args: string[], opts: { taskDir: string; cwd: string; env: Record<string, string> }): Promise<SpawnedWrapper> {
  const out = await open(join(opts.taskDir, "stdout"), "a");
  const err = await open(join(opts.taskDir, "stderr"), "a");
  try {
    const child = spawn("/bin/sh", ["-c", script, WRAPPER_ARGV0, opts.taskDir, ...args], {
      detached: true,
      stdio: ["ignore", out.fd, err.fd],
      env: opts.env,
      cwd: opts.cwd,
    });
    const exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once("spawn", () => resolve(child.pid ?? -1));
      child.once("error", (e) => reject(new DriverError(`cannot spawn the task wrapper: ${e.message}`, { taskDir: opts.taskDir }, e)));
    });
    // The agent must be able to exit while tasks run.
    child.unref();
    return { pid, exited };
  } finally {
    await Promise.all([out.close(), err.close()]);
  }
}

/** Whether `pid` is still the wrapper of this task dir (guards against pid reuse after an agent restart). */
export async function isWrapperAlive(pid: number, taskDir: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  const argv = await cmdlineOf(pid);
  return argv !== undefined && argv.includes(WRAPPER_ARGV0) && argv.includes(taskDir);
}

export async function hasExitFile(taskDir: string): Promise<boolean> {
  return (await readExitRecord(taskDir)) !== undefined;
}

export interface ExitWaitOptions {
  taskDir: string;
  /** Whether the task may still be running once its wrapper is gone (an LXC container whose wrapper was killed). */
  stillRunningWithoutWrapper: () => Promise<boolean>;
  wrapperPid: number;
  /** Wakes the poller early (exit event of a wrapper this process spawned). */
  wake?: Promise<void>;
  signal?: AbortSignal;
}

const MIN_POLL_MS = 20;
const MAX_POLL_MS = 1000;

/**
 * Polls the exit record with a bounded, growing interval (20 ms → 1 s). A wrapper
 * that is gone without an exit record means the status is lost (wrapper killed,
 * machine rebooted); that ends the wait rather than polling forever.
 */
export async function waitForExitRecord(o: ExitWaitOptions): Promise<ExitInfo> {
  let interval = MIN_POLL_MS;
  let woken = false;
  void o.wake?.then(() => {
    woken = true;
  });
  for (;;) {
    o.signal?.throwIfAborted();
    const rec = await readExitRecord(o.taskDir);
    if (rec) return exitInfoOf(rec);
    if (!(await isWrapperAlive(o.wrapperPid, o.taskDir))) {
      // The wrapper writes `exit` before it exits: look once more before calling it lost.
      const again = await readExitRecord(o.taskDir);
      if (again) return exitInfoOf(again);
      if (!(await o.stillRunningWithoutWrapper())) return lostExitInfo(`wrapper ${o.wrapperPid} is gone and ${join(o.taskDir, EXIT_FILE)} was never written`);
    }
    const waits: Promise<unknown>[] = [sleep(interval, undefined, { signal: o.signal })];
    if (o.wake && !woken) waits.push(o.wake);
    await Promise.race(waits);
    interval = Math.min(interval * 2, MAX_POLL_MS);
  }
}
