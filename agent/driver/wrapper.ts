/**
 * The host-side wrappers that own each task's exit status (docs/lxc-and-zookeeper.md, LXC 7).
 *
 * Each task gets a generated wrapper script, taskDir/wrapper.sh, run detached
 * from the agent with stdin /dev/null and stdout/stderr appended to
 * taskDir/stdout and stderr (O_APPEND): if the agent dies the wrapper is
 * reparented and still writes `exit` when the task ends.
 *
 * Wrappers are started by one long-lived bash launcher per agent (see Launcher),
 * in its own session: forking the agent's Node process costs ~1.2 ms of its main
 * thread per task (measured), forking a small shell is far cheaper. A wrapper is
 * a forked subshell of the launcher that sources wrapper.sh in the task dir (its
 * cwd, which identifies it), so starting a task execs nothing but the task
 * itself (and setpriv before it when it drops to another user), and after the
 * task ends only builtins run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { watch, type FSWatcher } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ExitInfo } from "../../src/common/types.js";
import { DriverError } from "../../src/common/errors.js";
import { EXIT_FILE, exitInfoOf, lostExitInfo, readExitRecord } from "./exit-record.js";
import { cmdlineOf, cwdOf } from "./procfs.js";

/** The wrapper script of tasks started by versions before the launcher had its wrappers as functions. */
const WRAPPER_FILE = "wrapper.sh";
/** PATH of the launcher and the wrappers (a shell variable there: they run host tools such as lxc-execute). */
export const TOOLS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Shell lines that append the final figures of cgroup "$g" (relative to the
 * controller mounts under "$r") to "$s" as key=value words: peak memory, memory
 * limit hits, OOM kills (memory.oom_control counts kills of processes *in* that
 * cgroup since it was made: "$o" is the count before the task, when it was
 * reused), CPU time. Builtins only.
 */
export const CGROUP_FIGURES_SH = `m="$r/memory/$g"
{
  read -r v <"$m/memory.max_usage_in_bytes" && s="$s mem_peak=$v"
  read -r v <"$m/memory.failcnt" && s="$s mem_failcnt=$v"
  while read -r k v; do [ "$k" = oom_kill ] && s="$s oom_kill=$((v - \${o:-0}))"; done <"$m/memory.oom_control"
  read -r v <"$r/cpuacct/$g/cpuacct.usage" && s="$s cpu_ns=$v"
} 2>/dev/null`;

/**
 * Writes the exit record of status $c (and the figures of cgroup "$g" when "$r"
 * is set) with builtins only, as one line and so one write (bash's echo writes
 * line by line), `code` last: a reader that sees `code` has the whole record
 * (exit-record.ts), and the agent's watch on the task dir wakes once for it.
 */
const EXIT_RECORD_SH = `s=
if [ -n "$r" ]; then
${CGROUP_FIGURES_SH}
fi
echo "\${s# }\${s:+ }code=$c" >"$d/exit" 2>/dev/null`;

/**
 * The process driver's wrapper, a function of the launcher; positional args:
 * taskDir cgroupRoot cgroupRel uid gid cwd envMode envCount env... argv...
 * (empty cgroupRoot = no cgroup, empty uid = keep the wrapper's user; another
 * user gets no supplementary groups and no_new_privs, so no setuid binary
 * gives it more; envMode is "export", or "env" when a name is special to bash,
 * see environmentOf); the task keeps the launcher's umask 077. The environment
 * is exported last, so a task variable named like one of the wrapper's cannot
 * change what it runs.
 * The cgroup may have run tasks before (cgroup-pool.ts): its counters are reset
 * first and the OOM kills it has seen kept in $o.
 * Job control (set -m) gives the task its own process group (pgid = its pid);
 * the wrapper is a subshell, so it waits for the task's termination only (a
 * stopped task is still running). The task subshell joins the task cgroups
 * (writing 0 to cgroup.procs moves the writer) and exports only the task's
 * environment (the launcher exports nothing) before it execs: the task is the
 * wrapper's direct child and the wrapper's $? is the task's own status. Bash's
 * own report of a task killed by a signal goes to /dev/null (fd 3 carries
 * stderr past it to the task).
 */
const PROCESS_WRAPPER_FN = `torca_process() {
d=$1 r=$2 g=$3 u=$4 gi=$5 w=$6 x=$7 n=$8
shift 8
torca_env=("\${@:1:n}")
shift "$n"
o=0
if [ -n "$r" ]; then
  m="$r/memory/$g"
  {
    echo 0 >"$m/memory.max_usage_in_bytes"; echo 0 >"$m/memory.failcnt"; echo 0 >"$r/cpuacct/$g/cpuacct.usage"
    while read -r k v; do [ "$k" = oom_kill ] && o=$v; done <"$m/memory.oom_control"
  } 2>/dev/null
fi
set -m
{ (
  exec 2>&3 3>&-
  cd "$w" || exit 126
  if [ -n "$r" ]; then
    { echo 0 >"$r/memory/$g/cgroup.procs" && echo 0 >"$r/pids/$g/cgroup.procs" && echo 0 >"$r/cpu/$g/cgroup.procs" && echo 0 >"$r/cpuacct/$g/cgroup.procs"; } || exit 125
  fi
  if [ -n "$u" ]; then set -- /usr/bin/setpriv --reuid="$u" --regid="$gi" --clear-groups --no-new-privs -- "$@"; fi
  if [ "$x" = env ]; then exec /usr/bin/env -i "\${torca_env[@]}" /usr/bin/setpriv -- "$@"; fi
  if (( n > 0 )); then export -- "\${torca_env[@]}"; fi
  exec "$@"
); } 3>&2 2>/dev/null
c=$?
set +m
${EXIT_RECORD_SH}
}`;

/**
 * The LXC driver's wrapper, a function of the launcher; positional args:
 * taskDir lxc-execute-args... The exit status of lxc-execute is the task's
 * (128+N for signal N; 1 also when the container failed to start,
 * docs/lxc-and-zookeeper.md, LXC 5). The container runs with umask 022, as
 * before the launcher's 077 (its /tmp and work dir are its own anyway). Final
 * cgroup figures come from the stop hook (cgstats), since the container's
 * cgroup is removed before lxc-execute returns.
 */
const LXC_WRAPPER_FN = `torca_lxc() {
d=$1
shift
(umask 022 && export PATH && exec lxc-execute "$@")
c=$?
r=
${EXIT_RECORD_SH}
}`;

/**
 * The launcher reads one start order per line, the shell words `kind taskDir
 * args...` (each quoted by lineQuote, so a line holds exactly one order), and
 * forks a subshell that runs the wrapper function of that kind in the task dir
 * with the task's stdio, answering with that subshell's pid. The wrappers are
 * functions defined once in the launcher, so a start writes no script and
 * bash parses none. It runs in its own session (spawned detached), so signals
 * to the agent's process group reach neither it nor the wrappers. When the
 * agent dies the launcher reads EOF and exits; the wrappers live on. umask
 * 077: the logs and exit records it and the wrappers create are the agent's
 * alone. It exports nothing (PATH stays a shell variable for its own lookups),
 * so a task's environment is exactly the one its wrapper exports.
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
for v in $(compgen -e) OLDPWD; do export -n "$v"; done
umask 077
${PROCESS_WRAPPER_FN}
${LXC_WRAPPER_FN}
while IFS= read -r l; do
  eval "set -- $l"
  k=$1 t=$2
  shift
  (cd "$t" && "torca_$k" "$@") </dev/null >>"$t/stdout" 2>>"$t/stderr" &
  echo "$!"
done`;

class Launcher {
  private child: ChildProcess | undefined;
  private readonly pending: { resolve: (pid: number) => void; reject: (e: Error) => void }[] = [];
  private buffered = "";

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    // --norc: bash reads ~/.bashrc when its stdin is a socket (it guesses rshd/sshd), and Node's pipes are socketpairs.
    const child = spawn("/bin/bash", ["--norc", "-c", LAUNCHER_SH, LAUNCHER_ARGV0], { stdio: ["pipe", "pipe", "inherit"], env: { PATH: TOOLS_PATH }, cwd: "/", detached: true });
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

  /** `order`: one line, without its line break. */
  launch(order: string): Promise<number> {
    const child = this.ensure();
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      // An answer is awaited: keep the event loop alive until it arrives.
      (child.stdout as Socket | null)?.ref();
      child.stdin?.write(order + "\n");
    });
  }
}

const launcher = new Launcher();

export type WrapperSpec =
  | {
      kind: "process";
      command: string[];
      cwd: string;
      /** The task's complete environment. */
      env: Record<string, string>;
      /** The task's cgroup under the controller mounts at `root`. */
      cgroup?: { root: string; relative: string };
      /** Drop to this user; kept the launcher's without it. */
      user?: { uid: number; gid: number };
    }
  /** A container: lxc-execute's args. */
  | { kind: "lxc"; args: string[] };

/** The process wrapper's array of the task's environment (see environmentOf). */
const ENV_ARRAY = "torca_env";

/**
 * Names bash will not export as given (read-only, or variables it computes or
 * reads itself); an environment with one of them goes through `env -i` instead.
 */
const BASH_SPECIAL_NAME = /^(BASH\w*|SHELLOPTS|BASHOPTS|UID|EUID|PPID|GROUPS|FUNCNAME|RANDOM|SRANDOM|SECONDS|LINENO|HISTCMD|EPOCHREALTIME|EPOCHSECONDS|DIRSTACK|PIPESTATUS|IFS|OPTIND|OPTARG|POSIXLY_CORRECT|_)$/;

/**
 * How the process wrapper gives the task exactly `env`: `export` in the task
 * subshell (no exec), or `env -i` before the command when a name is special to
 * bash or is the wrapper's array of the environment itself (setpriv -- keeps
 * a command containing `=` from being read as a variable). Any other name
 * may shadow a wrapper variable: nothing reads them after the export.
 */
function environmentOf(env: Record<string, string>): string[] {
  const pairs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const mode = Object.keys(env).some((k) => BASH_SPECIAL_NAME.test(k) || k === ENV_ARRAY) ? "env" : "export";
  return [mode, String(pairs.length), ...pairs];
}

/** A shell word on one line: single quotes, or $'…' when `s` holds a line break. */
function lineQuote(s: string): string {
  if (!/[\n\r]/.test(s)) return shQuote(s);
  return `$'${s.replace(/[\\']/g, (c) => `\\${c}`).replace(/\n/g, "\\n").replace(/\r/g, "\\r")}'`;
}

/** The launcher's start order for a task: one line of quoted words. */
function startOrder(taskDir: string, spec: WrapperSpec): string {
  const words =
    spec.kind === "process"
      ? [spec.kind, taskDir, spec.cgroup?.root ?? "", spec.cgroup?.relative ?? "", spec.user ? String(spec.user.uid) : "", spec.user ? String(spec.user.gid) : "", spec.cwd, ...environmentOf(spec.env), ...spec.command]
      : [spec.kind, taskDir, ...spec.args];
  return words.map(lineQuote).join(" ");
}

/** Starts the task's wrapper detached, through the agent's launcher; returns the wrapper's pid. */
export async function spawnWrapper(taskDir: string, spec: WrapperSpec): Promise<number> {
  return launcher.launch(startOrder(taskDir, spec));
}

/** Whether `pid` is still the wrapper of this task dir (guards against pid reuse after an agent restart). */
export async function isWrapperAlive(pid: number, taskDir: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  const argv = await cmdlineOf(pid);
  if (argv === undefined) return false;
  // A wrapper started by an earlier version: `/bin/sh <wrapper>`.
  if (argv.includes(join(taskDir, WRAPPER_FILE))) return true;
  if (argv[argv.length - 1] !== LAUNCHER_ARGV0) return false;
  // A forked subshell of a launcher: its cwd is the task dir, or still the launcher's "/" right after the fork.
  const cwd = await cwdOf(pid);
  return cwd === taskDir || cwd === "/";
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
/** First poll when the task dir is watched: the watch wakes the wait, polls only back it up. */
const WATCHED_FIRST_POLL_MS = 250;
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
  let wakeUp: () => void = () => undefined;
  let changes = 0;
  const watcher = watchForExitFile(o.taskDir, () => {
    changes++;
    wakeUp();
  });
  let interval = watcher ? WATCHED_FIRST_POLL_MS : MIN_POLL_MS;
  let goneSince: number | undefined;
  // The wrapper is looked for only when a poll (not the watch) woke the wait: right
  // after a start it is surely there, and reading /proc/<pid> of a process that is
  // forking or exec'ing waits for it.
  let polled = false;
  try {
    for (;;) {
      o.signal?.throwIfAborted();
      const seen = changes;
      const rec = await readExitRecord(o.taskDir);
      if (rec) return exitInfoOf(rec);
      if (polled && !(await isWrapperAlive(o.wrapperPid, o.taskDir))) {
        // The wrapper writes `exit` before it exits: look once more before calling it lost.
        const again = await readExitRecord(o.taskDir);
        if (again) return exitInfoOf(again);
        // /proc/<pid> can briefly look foreign right after the launcher forked the wrapper
        // (an earlier version's wrapper exec'd on towards /bin/sh): only a wrapper gone for
        // a while has really lost the status.
        goneSince ??= Date.now();
        if (Date.now() - goneSince >= WRAPPER_GONE_GRACE_MS && !(await o.stillRunningWithoutWrapper())) return lostExitInfo(`wrapper ${o.wrapperPid} is gone and ${join(o.taskDir, EXIT_FILE)} was never written`);
      } else if (polled) goneSince = undefined;
      // `exit` changed while it was being read: read it again at once.
      polled = false;
      if (changes !== seen) continue;
      const ac = new AbortController();
      const abortSleep = (): void => ac.abort();
      o.signal?.addEventListener("abort", abortSleep, { once: true });
      wakeUp = abortSleep;
      await sleep(interval, undefined, { signal: ac.signal }).catch(() => undefined);
      o.signal?.removeEventListener("abort", abortSleep);
      polled = changes === seen;
      if (polled) interval = Math.min(interval * 2, MAX_POLL_MS);
    }
  } finally {
    watcher?.close();
  }
}
