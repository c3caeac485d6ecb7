/**
 * The host-side /bin/sh wrappers that own each task's exit status (docs/lxc-and-zookeeper.md, LXC 7).
 *
 * Each task gets a generated wrapper script, taskDir/wrapper.sh, run detached
 * (own session, stdin /dev/null, stdout/stderr appended to taskDir/stdout and
 * stderr, O_APPEND): if the agent dies the wrapper is reparented and still
 * writes `exit` when the task ends. A shell rather than a Node process per task:
 * ~1 MB and a millisecond instead of 40 MB and 50 ms. After the task ends only
 * shell builtins run, except the final `mv`.
 *
 * Wrappers are started by one long-lived /bin/sh launcher per agent (see Launcher):
 * forking the agent's Node process costs ~1.2 ms of its main thread per task
 * (measured), which alone would cap starts below the 500/s target on 2 cores;
 * forking a small shell is far cheaper.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { watch, type FSWatcher } from "node:fs";
import { writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ExitInfo } from "../../src/common/types.js";
import { DriverError } from "../../src/common/errors.js";
import { EXIT_FILE, exitInfoOf, lostExitInfo, readExitRecord } from "./exit-record.js";
import { cmdlineOf } from "./procfs.js";

export const WRAPPER_FILE = "wrapper.sh";
/** PATH of the wrappers and the launcher (they run host tools: lxc-execute, mv, setsid). */
export const TOOLS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Shell lines that print the final figures of cgroup "$g" (relative to the
 * controller mounts under "$r"): peak memory, memory limit hits, OOM kills
 * (memory.oom_control counts kills of processes *in* that cgroup), CPU time.
 */
export const CGROUP_FIGURES_SH = `m="$r/memory/$g"
read -r v <"$m/memory.max_usage_in_bytes" && echo "mem_peak=$v"
read -r v <"$m/memory.failcnt" && echo "mem_failcnt=$v"
while read -r k v; do [ "$k" = oom_kill ] && echo "oom_kill=$v"; done <"$m/memory.oom_control"
read -r v <"$r/cpuacct/$g/cpuacct.usage" && echo "cpu_ns=$v"`;

/**
 * Process driver; positional args: taskDir cgroupRoot cgroupRel uid gid argv...
 * (empty cgroupRoot = no cgroup, empty uid = keep the wrapper's user; another
 * user gets no supplementary groups and no_new_privs, so no setuid binary
 * gives it more); the task keeps the launcher's umask 077;
 * @CWD@ and @ENV@ are filled in when the file is generated.
 * The subshell joins the task cgroups (writing 0 to cgroup.procs moves the writer),
 * clears the environment and execs setsid, which does not fork because the subshell
 * is not a group leader: so the task is the wrapper's direct child, leads its own
 * process group (pgid = its pid), and the wrapper's $? is the task's own status.
 */
export const PROCESS_WRAPPER_SH = `d=$1 r=$2 g=$3 u=$4 gi=$5
shift 5
(
  cd @CWD@ || exit 126
  if [ -n "$r" ]; then
    { echo 0 >"$r/memory/$g/cgroup.procs" && echo 0 >"$r/pids/$g/cgroup.procs" && echo 0 >"$r/cpu/$g/cgroup.procs" && echo 0 >"$r/cpuacct/$g/cgroup.procs"; } || exit 125
  fi
  if [ -n "$u" ]; then exec /usr/bin/setpriv --reuid="$u" --regid="$gi" --clear-groups --no-new-privs /usr/bin/env -i @ENV@ /usr/bin/setsid -- "$@"; fi
  exec /usr/bin/env -i @ENV@ /usr/bin/setsid -- "$@"
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
 * LXC driver; positional args: taskDir lxc-execute-args... The exit status of
 * lxc-execute is the task's (128+N for signal N; 1 also when the container failed
 * to start, docs/lxc-and-zookeeper.md, LXC 5). The container runs with umask 022, as before the
 * launcher's 077 (its /tmp and work dir are its own anyway). Final cgroup
 * figures come from the stop hook (cgstats),
 * since the container's cgroup is removed before lxc-execute returns.
 */
export const LXC_WRAPPER_SH = `d=$1
shift
(umask 022 && exec lxc-execute "$@")
c=$?
echo "code=$c" >"$d/exit.tmp" && mv -f "$d/exit.tmp" "$d/exit"
`;

/**
 * The launcher reads one wrapper path per line and starts it in a new session with
 * the task's stdio, answering with the wrapper's pid. setsid does not fork here (a
 * background job is not a group leader), so $! is the wrapper itself. When the
 * agent dies the launcher reads EOF and exits; the wrappers live on. umask 077:
 * the logs and exit records it and the wrappers create are the agent's alone.
 */
const LAUNCHER_ARGV0 = "torca-launcher";
/**
 * First closes every descriptor it inherited but its stdio: the ZooKeeper C
 * client opens its sockets without close-on-exec, and a launcher (then every
 * wrapper and task) holding the agent's ZooKeeper socket keeps its file open
 * after the agent closes it, so the agent's epoll kept reporting that dead
 * connection under its old descriptor number and every later socket given that
 * number (the next ZooKeeper connection) went deaf: agents then failed to
 * reconnect or open any session for minutes after a ZooKeeper server was lost.
 * Bash, because dash cannot name descriptors above 9.
 */
const LAUNCHER_SH = `for f in /proc/$$/fd/*; do n=\${f##*/}; if (( n > 2 )); then exec {n}>&-; fi; done 2>/dev/null
umask 077
while IFS= read -r f; do
  t=\${f%/*}
  /usr/bin/setsid /bin/sh "$f" </dev/null >>"$t/stdout" 2>>"$t/stderr" &
  echo "$!"
done`;

class Launcher {
  private child: ChildProcess | undefined;
  private readonly pending: { resolve: (pid: number) => void; reject: (e: Error) => void }[] = [];
  private buffered = "";

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    const child = spawn("/bin/bash", ["-c", LAUNCHER_SH, LAUNCHER_ARGV0], { stdio: ["pipe", "pipe", "inherit"], env: { PATH: TOOLS_PATH }, cwd: "/" });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf("\n")) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        const pid = Number(line);
        const p = this.pending.shift();
        if (this.pending.length === 0) (child.stdout as Socket | null)?.unref();
        if (!p) continue;
        if (Number.isInteger(pid) && pid > 1) p.resolve(pid);
        else p.reject(new DriverError(`task launcher answered ${JSON.stringify(line)} instead of a pid`));
      }
    });
    const fail = (why: string): void => {
      if (this.child === child) this.child = undefined;
      this.buffered = "";
      for (const p of this.pending.splice(0)) p.reject(new DriverError(`task launcher ${why}`));
    };
    child.once("exit", (code, sig) => fail(`exited (${sig ?? code})`));
    child.once("error", (e) => fail(`failed: ${e.message}`));
    child.stdin?.on("error", () => undefined);
    // Idle launchers must not keep the agent alive.
    child.unref();
    (child.stdout as Socket | null)?.unref();
    (child.stdin as Socket | null)?.unref();
    this.child = child;
    return child;
  }

  launch(wrapperPath: string): Promise<number> {
    const child = this.ensure();
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      // An answer is awaited: keep the event loop alive until it arrives.
      (child.stdout as Socket | null)?.ref();
      child.stdin?.write(wrapperPath + "\n");
    });
  }
}

const launcher = new Launcher();

export interface WrapperSpec {
  /** PROCESS_WRAPPER_SH or LXC_WRAPPER_SH. */
  script: string;
  /** Positional args after the task dir. */
  args: string[];
  /** Process driver: the task's cwd and complete environment. */
  cwd?: string;
  env?: Record<string, string>;
}

export function renderWrapper(taskDir: string, spec: WrapperSpec): string {
  const envArgs = Object.entries(spec.env ?? {})
    .map(([k, v]) => shQuote(`${k}=${v}`))
    .join(" ");
  const body = spec.script.replace(/@CWD@/g, shQuote(spec.cwd ?? taskDir)).replace(/@ENV@/g, envArgs);
  return `# generated by torca: the host-side wrapper of the task in this directory
set -- ${[taskDir, ...spec.args].map(shQuote).join(" ")}
${body}`;
}

/** Writes taskDir/wrapper.sh and starts it detached; returns the wrapper's pid. */
export async function spawnWrapper(taskDir: string, spec: WrapperSpec): Promise<number> {
  if (/[\n\r]/.test(taskDir)) throw new DriverError(`taskDir must not contain line breaks: ${JSON.stringify(taskDir)}`);
  const path = join(taskDir, WRAPPER_FILE);
  await writeFile(path, renderWrapper(taskDir, spec), { mode: 0o600 });
  return launcher.launch(path);
}

/** Whether `pid` is still the wrapper of this task dir (guards against pid reuse after an agent restart). */
export async function isWrapperAlive(pid: number, taskDir: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  const argv = await cmdlineOf(pid);
  if (argv === undefined) return false;
  // Right after the launcher answered, the pid may still be the launcher's fork or
  // setsid, which both exec on towards `/bin/sh <wrapper>` without forking.
  return argv.includes(join(taskDir, WRAPPER_FILE)) || argv[argv.length - 1] === LAUNCHER_ARGV0;
}

export async function hasExitFile(taskDir: string): Promise<boolean> {
  return (await readExitRecord(taskDir)) !== undefined;
}

export interface ExitWaitOptions {
  taskDir: string;
  /** Whether the task may still be running once its wrapper is gone (a task or container whose wrapper was killed). */
  stillRunningWithoutWrapper: () => Promise<boolean>;
  wrapperPid: number;
  signal?: AbortSignal;
}

const MIN_POLL_MS = 20;
const MAX_POLL_MS = 1000;

/** An inotify watch on the task dir that fires when `exit` appears; undefined if watching is not possible. */
function watchForExitFile(taskDir: string, onExit: () => void): FSWatcher | undefined {
  try {
    const w = watch(taskDir, { persistent: false }, (_event, filename) => {
      if (filename === EXIT_FILE) onExit();
    });
    w.on("error", () => undefined);
    return w;
  } catch {
    return undefined;
  }
}

/** How long a wrapper must look gone before its exit status counts as lost. */
const WRAPPER_GONE_GRACE_MS = 1000;

/**
 * Waits for the exit record: woken by an inotify watch on the task dir, with a
 * bounded, growing poll (20 ms → 1 s) as the fallback. A wrapper that is gone
 * without an exit record means the status is lost (wrapper killed, machine
 * rebooted); that ends the wait rather than polling forever.
 */

export async function waitForExitRecord(o: ExitWaitOptions): Promise<ExitInfo> {
  let interval = MIN_POLL_MS;
  let goneSince: number | undefined;
  let wakeUp: () => void = () => undefined;
  const watcher = watchForExitFile(o.taskDir, () => wakeUp());
  try {
    for (;;) {
      o.signal?.throwIfAborted();
      const rec = await readExitRecord(o.taskDir);
      if (rec) return exitInfoOf(rec);
      if (!(await isWrapperAlive(o.wrapperPid, o.taskDir))) {
        // The wrapper writes `exit` before it exits: look once more before calling it lost.
        const again = await readExitRecord(o.taskDir);
        if (again) return exitInfoOf(again);
        // /proc/<pid>/cmdline is briefly unreadable or foreign while the launcher execs
        // on towards the wrapper: only a wrapper gone for a while has really lost the status.
        goneSince ??= Date.now();
        if (Date.now() - goneSince >= WRAPPER_GONE_GRACE_MS && !(await o.stillRunningWithoutWrapper())) return lostExitInfo(`wrapper ${o.wrapperPid} is gone and ${join(o.taskDir, EXIT_FILE)} was never written`);
      } else goneSince = undefined;
      const ac = new AbortController();
      const abortSleep = (): void => ac.abort();
      o.signal?.addEventListener("abort", abortSleep, { once: true });
      wakeUp = abortSleep;
      await sleep(interval, undefined, { signal: ac.signal }).catch(() => undefined);
      o.signal?.removeEventListener("abort", abortSleep);
      interval = Math.min(interval * 2, MAX_POLL_MS);
    }
  } finally {
    watcher?.close();
  }
}
