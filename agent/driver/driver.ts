/**
 * The agent's task driver contract (modelled loosely on Nomad's
 * plugins/drivers: start/wait/stop/destroy/inspect/recover around a persisted handle).
 *
 * Every task runs detached from the agent, under a small host-side shell
 * wrapper that owns the task's exit status: it writes `exit` in the task dir
 * (complete once its `code` line is there) even while the agent is down, so an
 * agent restart only needs the persisted TaskHandle to find the task again.
 *
 * Files in taskDir (the agent's, mode 0600; the dir itself is the runner's, 0711):
 *   stdout, stderr   the task's output (opened O_APPEND by the agent, safe to copy-truncate)
 *   exit             key=value words on one line: final cgroup figures when the task had a cgroup, then code=<sh status>
 *   cgstats          lxc only: final cgroup figures written by the LXC stop hook
 *   lxc.conf         lxc only: the container's configuration
 *   work/            the task's writable work dir, mode 0700, owned by the task's user
 *                    (lxc: /task/work inside the container)
 */
import type { ExitInfo, Resources } from "../../src/common/types.js";
import type { ExecCommand, ExecContext } from "./exec.js";

export type DriverName = "lxc" | "process";

export interface TaskLaunch {
  taskId: string;
  attempt: number;
  /** argv; command[0] is resolved against packageDir if it contains a slash and is not absolute, else looked up in PATH. */
  command: string[];
  /** Unpacked package (read-only for the task); the task's cwd. Without it the cwd is taskDir/work. */
  packageDir?: string;
  /** Per-(task, attempt) directory owned by the agent; must be absolute. */
  taskDir: string;
  /** The complete environment of the task; PATH defaults to DEFAULT_TASK_PATH when absent. */
  env: Record<string, string>;
  /** cpu cores → CFS quota; memory bytes → memory limit (0 = none); disk is recorded only. */
  resources: Resources;
  /** Default DEFAULT_PIDS_MAX. Counts threads too (cgroup v1 pids controller). */
  pidsMax?: number;
  /** lxc: default 1000:1000; process driver: the agent's own user unless set. The agent's runner always sets it (agent/tasks/task-users.ts). */
  user?: { uid: number; gid: number };
  /** lxc only: "host" shares the host network namespace, "none" gives an empty netns with lo up. Default "host". */
  network?: "host" | "none";
  /** Host device nodes of the task's devices: lxc binds each at the same path and allows it in the devices cgroup; processes see the host's /dev already. */
  devicePaths?: string[];
  /** An alloc (process driver, alloc.ts): these members run under one parent cgroup with `resources`; `command` is unused. */
  members?: MemberLaunch[];
  /** Process driver: the cgroup's name under the driver's parent (an alloc member's: "<alloc>/<member>"); default instanceName. */
  cgroupName?: string;
}

/** One member of an alloc: its own command, environment additions and optional caps. */
export interface MemberLaunch {
  name: string;
  command: string[];
  env: Record<string, string>;
  resources?: { cpu?: number; memory?: number };
}

/** A started member: its wrapper, its dir (logs and exit record) and its child cgroup. */
export interface MemberHandle {
  name: string;
  pid: number;
  dir: string;
  /** Below the alloc's cgroup: "<alloc cgroup>/<name>". */
  cgroup?: string;
}

/** A member as the agent reports it. */
export interface MemberState {
  name: string;
  state: "running" | "exited";
  exit?: ExitInfo;
}

export interface TaskHandle {
  driver: DriverName;
  taskId: string;
  attempt: number;
  taskDir: string;
  /** Host-side wrapper pid; the wrapper leads its own session. */
  pid: number;
  containerName?: string;
  lxcPath?: string;
  startedAt: number;
  /** Name of the task's cgroup below <cgroupRoot>/<ctrl>/torca/ (absent: the task has none); an alloc's parent cgroup. */
  cgroup?: string;
  /** An alloc's members; `pid` is then the first member's wrapper. */
  members?: MemberHandle[];
}

export interface TaskUsage {
  cpuNs: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  pids: number;
}

/** Figures of a finished task read from its exit record, when it had a cgroup. */
export interface FinalUsage {
  cpuNs?: number;
  memoryPeakBytes?: number;
  memoryFailcnt?: number;
  oomKills?: number;
}

export interface FingerprintResult {
  available: boolean;
  reason?: string;
  attributes: Record<string, string>;
}

export interface WaitOptions {
  /** Stop waiting (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

export interface Driver {
  readonly name: DriverName;
  fingerprint(): Promise<FingerprintResult>;
  start(launch: TaskLaunch): Promise<TaskHandle>;
  /** Resolves once the task exited; works for recovered handles too (polls the exit file and the wrapper pid). */
  wait(handle: TaskHandle, opts?: WaitOptions): Promise<ExitInfo>;
  /** SIGTERM to the task, SIGKILL after graceMs; resolves once it exited or was SIGKILLed. */
  stop(handle: TaskHandle, graceMs: number): Promise<void>;
  signal(handle: TaskHandle, signal: NodeJS.Signals): Promise<void>;
  inspect(handle: TaskHandle): Promise<{ running: boolean; usage?: TaskUsage }>;
  /** Final cgroup figures from the exit record, read after `wait` (drivers without cgroups have none). */
  finalUsage?(handle: TaskHandle): Promise<FinalUsage | undefined>;
  /** An alloc's members with their exits (read from their exit records). */
  memberStates?(handle: TaskHandle): Promise<MemberState[]>;
  /** After an agent restart: is the task of this handle still running, finished (exit file), or gone without a trace? */
  recover(handle: TaskHandle): Promise<"running" | "exited" | "gone">;
  /** How to run a command beside the running task of `handle`, in its context (torca exec; exec.ts). */
  execCommand(handle: TaskHandle, x: ExecContext): ExecCommand;
  /** Cleanup (kills leftovers, removes cgroup dirs and container leftovers); keeps logs and the exit record. */
  destroy(handle: TaskHandle): Promise<void>;
  /** The agent is stopping: gives back what the driver keeps for tasks to come (pooled cgroups); running tasks are untouched. */
  close?(): Promise<void>;
}

export const DEFAULT_PIDS_MAX = 256;
export const DEFAULT_TASK_PATH = "/usr/local/bin:/usr/bin:/bin";
/** CFS period used for cpu quotas (µs). */
export const CFS_PERIOD_US = 100_000;
