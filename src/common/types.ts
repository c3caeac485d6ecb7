/**
 * Domain types shared by manager, agent, naming and CLI. These are the trusted
 * shapes *after* validation at the border (task files, config, HTTP bodies).
 * Units are normalized: cpu in cores, memory/disk in bytes, durations in ms.
 */

export interface Resources {
  /** CPU in cores (0.5 = half a core). */
  cpu: number;
  /** Bytes. */
  memory: number;
  /** Bytes. */
  disk: number;
}

export type ConstraintOperator = "=" | "!=" | "in" | "regexp";

export interface Constraint {
  attribute: string;
  operator: ConstraintOperator;
  /** A string for `=`, `!=`, `regexp`; a list for `in`. */
  value: string | string[];
}

export interface HealthCheck {
  type: "http" | "tcp";
  /** HTTP path; only for type http. */
  path?: string;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures before a service task is restarted. */
  failures: number;
}

export interface PortSpec {
  name: string;
  /** A fixed host port; absent = allocated dynamically by the agent. */
  static?: number;
  check?: HealthCheck;
}

export interface RestartPolicy {
  attempts: number;
  delayMs: number;
  backoff: number;
  maxDelayMs: number;
}

export type AlertOn = "failed" | "lost" | "oom-killed" | "unhealthy" | "completed" | "cron-failed";

export interface NotifySpec {
  email: string[];
  sms: string[];
  on: AlertOn[];
}

/** The kinds of alert the manager and the master raise (config routes select them by kind). */
export const ALERT_KINDS = [
  "task-failed",
  "task-lost",
  "task-oom-killed",
  "service-unhealthy",
  "node-lost",
  "node-back",
  // The primary withholds migrations (ZooKeeper cannot be written, or a mass loss of nodes).
  "migration-held",
  "manager-failover",
  "cron-failed",
  "cron-missed",
  "daemon-crashloop",
  // Task files accept `notify.on: [completed]`; without a kind for it that
  // setting would silently never notify anyone.
  "job-completed",
  // An agent served another agent a package blob that does not match its digest (bad disk, tampering).
  "package-corrupt",
] as const;

export type AlertKind = (typeof ALERT_KINDS)[number];

export type PackageRef = { kind: "named"; name: string; version: string } | { kind: "digest"; digest: string };

export const PLACEMENT_STRATEGIES = ["binpack", "spread", "fragmentation"] as const;
export type PlacementStrategy = (typeof PLACEMENT_STRATEGIES)[number];

export interface PlacementPolicy {
  /**
   * binpack fills machines; spread prefers the emptiest; fragmentation leaves
   * the least capacity stranded for the cell's typical tasks (docs/scheduler.md).
   * Absent: the cell's `manager.placementStrategy` (binpack unless configured).
   */
  strategy?: PlacementStrategy;
  /** At most this many instances of the job on one machine; absent = no limit. */
  maxPerNode?: number;
}

/** A device name, vendor/type: lowercase letters, digits, ".", "_" and "-" on each side of one "/". */
export const DEVICE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}\/[a-z0-9][a-z0-9._-]{0,62}$/;

/** One `resources.devices` entry: `count` instances of the device `name` whose attributes meet `constraints`. */
export interface DeviceRequest {
  /** vendor/type, e.g. nvidia/gpu. */
  name: string;
  count: number;
  /** On the device instance's attributes (model, memory, ...), with the operators of job constraints. */
  constraints: Constraint[];
}

/** A job's resources: the machine's dimensions, and devices when the job asks for some. */
export interface JobResources extends Resources {
  devices?: DeviceRequest[];
}

/** Concrete device instances given to one task (the scheduler's choice, kept in the task record). */
export interface DeviceAssignment {
  name: string;
  ids: string[];
}

/** Devices of one kind on a node, as its agent fingerprinted or was configured with them. */
export interface NodeDeviceGroup {
  /** vendor/type, e.g. nvidia/gpu. */
  name: string;
  /** Several tasks may be given the same instance. */
  shareable: boolean;
  instances: { id: string; attributes: Record<string, string> }[];
}

/** `update:` how a new version of a service rolls out (docs/task-file.md; defaults in taskfile/schema.ts). */
export interface UpdatePolicy {
  /** Instances changed at once. */
  maxParallel: number;
  /** 0: an old instance is replaced by a new one; above 0, up to this many new ones start before old ones stop. */
  maxSurge: number;
  minHealthyTimeMs: number;
  healthyDeadlineMs: number;
  progressDeadlineMs: number;
  canary: number;
  autoPromote: boolean;
  autoRevert: boolean;
  /** An old instance stays up this long after leaving naming, then is stopped. */
  drainDelayMs: number;
  /** Least time between two batches of changed instances. */
  staggerMs: number;
}

/** A validated task description file: one job of `instances` identical tasks. */
export interface JobSpec {
  name: string;
  namespace: string;
  type: "service" | "batch";
  /** 0..1000; prod = 200, batch = 100. */
  priority: number;
  instances: number;
  package?: PackageRef;
  /** The package reference as the user wrote it (`webapp@1.2.0` or `sha256:…`). */
  packageText?: string;
  command: string[];
  env: Record<string, string>;
  resources: JobResources;
  isolation?: "lxc" | "process";
  /** Run the task as root; absent: as the agent's unprivileged task user. Allowed only with an admin token on an agent that opts in. */
  user?: "root";
  constraints: Constraint[];
  ports: PortSpec[];
  service?: { name: string };
  restart: RestartPolicy;
  schedule?: string;
  notify?: NotifySpec;
  placement: PlacementPolicy;
  /** Cut off from ZooKeeper and every manager past the grace, the agent stops the task unless `keepRunning` (it may then run twice). */
  disconnect?: { keepRunning: boolean };
  /** Present only when the file has an `update:` block (with its defaults filled in). */
  update?: UpdatePolicy;
  /** Batch tasks may run on reclaimed capacity (docs/reclamation.md); absent: the cell's default. */
  reclaimable?: boolean;
  /**
   * A tree container (docs/allocs.md): the instance runs these member tasks
   * together under one parent cgroup. The job's `resources` are the alloc's,
   * its `ports` the union of the members' ports and its `command` is empty.
   */
  alloc?: AllocSpec;
}

/** The member tasks of an alloc; `resources` of the job is what they share. */
export interface AllocSpec {
  tasks: AllocMember[];
}

/** Names of alloc members: they name a child cgroup and a log dir (like job names, at most 32 characters). */
export const ALLOC_MEMBER_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

export interface AllocMember {
  /** Unique within the alloc; names its child cgroup, log files and `torca logs --member`. */
  name: string;
  command: string[];
  /** Added to the job's env for this member. */
  env: Record<string, string>;
  /** Names of the job's ports this member declared (every member sees every port's TORCA_PORT_*). */
  ports: string[];
  /** Optional caps of the member's own child cgroup (absent: bounded by the alloc only). */
  resources?: { cpu?: number; memory?: number };
}

/** A member of an alloc instance as its agent last reported it. */
export interface MemberStatus {
  name: string;
  state: "starting" | "running" | "exited";
  exit?: ExitInfo;
}

export const PRIORITY_PROD = 200;
export const PRIORITY_BATCH = 100;

export function jobIdOf(namespace: string, name: string): string {
  return namespace === "default" ? name : `${namespace}:${name}`;
}

export function taskIdOf(jobId: string, index: number): string {
  return `${jobId}/${index}`;
}

export function parseTaskId(taskId: string): { jobId: string; index: number } | undefined {
  const slash = taskId.lastIndexOf("/");
  if (slash <= 0) return undefined;
  // Only the form taskIdOf writes: Number() alone would also read "", " 0", "0x0" and "1e0" as indexes.
  const digits = taskId.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,8})$/.test(digits)) return undefined;
  return { jobId: taskId.slice(0, slash), index: Number(digits) };
}

export const JOB_STATUSES = ["pending", "running", "complete", "failed", "dead"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** What the manager wants of a task. */
export type DesiredState = "run" | "stop";

/**
 * Lifecycle of one task instance as the manager records it.
 * pending → dispatched → running → completed | failed | killed | lost
 */
export type TaskState = "pending" | "dispatched" | "running" | "completed" | "failed" | "killed" | "lost";

export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set(["completed", "failed", "killed", "lost"]);

export interface ExitInfo {
  exitCode: number | null;
  signal: string | null;
  oomKilled: boolean;
  /** Human-readable reason ("exit 1", "oom-killed", "killed by SIGKILL", "node lost"). */
  reason: string;
}

export interface TaskEvent {
  at: number;
  type: string;
  message: string;
}

export interface TaskInstance {
  id: string;
  jobId: string;
  index: number;
  /** Run number for cron jobs (0 for plain jobs). */
  run: number;
  desired: DesiredState;
  state: TaskState;
  /** Increases on every (re)start; dispatch is idempotent by (task, attempt). */
  attempt: number;
  /** Restarts on the current node (reset on migration). */
  restartsOnNode: number;
  /** Times the task was moved off a node because it kept failing there. */
  migrations: number;
  nodeId?: string;
  /** The node of the latest attempt, kept after the task leaves it (where its logs are). */
  lastNodeId?: string;
  /** Restart here (restart policy) instead of asking the scheduler. */
  stickyNode?: string;
  /** Nodes the scheduler must not use for this task (it failed there). */
  avoidNodes?: string[];
  dispatchedAt?: number;
  /** Ports allocated by the agent (name → host port). */
  ports?: Record<string, number>;
  /** Device instances the scheduler gave the current attempt; held while the task holds its node (a new primary rebuilds the free instances from these). */
  devices?: DeviceAssignment[];
  exit?: ExitInfo;
  /** Why the task is pending or failed (scheduler reasons, last error). */
  reason?: string;
  /** Earliest time a pending retry may start (ms since epoch). */
  notBefore?: number;
  createdAt: number;
  updatedAt: number;
  startedAt?: number;
  finishedAt?: number;
  events: TaskEvent[];
  /** Usage totals from the agents' readings, recorded with the exit that ended the task (so they outlive the primary that collected them). */
  usage?: { cpuSeconds: number; memoryByteSeconds: number; peakMemoryBytes: number; wallSeconds: number };
  /** The job version this instance runs (absent: 0). */
  version?: number;
  /** When this record took its version (a new instance, or one updated in place): the healthy deadline counts from here. */
  versionSince?: number;
  /** The agent's latest health verdict for the current attempt (absent: no checks, or not reported yet). */
  healthy?: boolean;
  /** Since when the current attempt has been healthy. */
  healthySince?: number;
  /** Started as a canary of a deployment not promoted yet. */
  canary?: boolean;
  /** An alloc's members (the job has `alloc`): state, exit and OOM of each, as the agent reported them. */
  members?: MemberStatus[];
  /** The current attempt was placed on reclaimed capacity (docs/reclamation.md): it may be throttled, then evicted back to pending. */
  reclaimed?: boolean;
}

export interface Job {
  id: string;
  spec: JobSpec;
  /** The task file as submitted, for display. */
  source: string;
  status: JobStatus;
  desired: "run" | "stop";
  submittedAt: number;
  updatedAt: number;
  /** Resolved content digest of `spec.package`, fixed at submission. */
  packageDigest?: string;
  /** Cron bookkeeping. */
  /** Cron bookkeeping; `retiredRun`: the newest run whose task records retention deleted (expansion does not recreate it). */
  cron?: { lastFiring?: number; runs: number; retiredRun?: number };
  /** The version `spec` is (0 for the first submission; absent: 0). */
  version?: number;
  /** The rollout of `version`, while one is under way and after it ended (deployment/). */
  deployment?: Deployment;
}

export const DEPLOYMENT_STATUSES = ["running", "awaiting-promotion", "paused", "successful", "failed", "reverted", "cancelled"] as const;
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number];

/** A rollout of one job version, stored in the job's record so a new primary resumes it. */
export interface Deployment {
  id: string;
  version: number;
  status: DeploymentStatus;
  description: string;
  startedAt: number;
  /** Last time the count of healthy new instances grew (or the deployment started or resumed). */
  progressAt: number;
  /** Healthy new instances when last counted. */
  healthy: number;
  /** Canaries have been promoted (always true without canaries). */
  promoted: boolean;
  /** Last time a batch of changes started (for `stagger`). */
  lastBatchAt?: number;
  /** The version an automatic revert goes back to: the last version whose deployment succeeded. */
  stableVersion?: number;
  /** A restart (`torca restart`): instances of the version that took it before this time are replaced too. */
  restartAt?: number;
  /** Every instance at once (`torca restart --all-at-once`) instead of `maxParallel` at a time. */
  allAtOnce?: boolean;
  finishedAt?: number;
}

export type NodeState = "ready" | "draining" | "disconnected" | "lost";

/** An agent's machine as the collector knows it. */
export interface NodeInfo {
  id: string;
  /** Base URL of the agent's API, e.g. http://127.0.0.1:7401 */
  url: string;
  host: string;
  state: NodeState;
  capacity: Resources;
  /** What may be given to tasks (capacity minus reserved). */
  allocatable: Resources;
  attributes: Record<string, string>;
  /** Package digests present in the agent's cache. */
  cachedPackages: string[];
  /** Digests whose blobs the agent serves to other agents (its ad). */
  blobs?: string[];
  /** Dynamic port range the agent allocates from. */
  portRange: [number, number];
  drivers: { lxc: boolean; process: boolean };
  /** Devices the node offers (absent: none, or an agent older than devices). */
  devices?: NodeDeviceGroup[];
  load?: { cpu1m: number; memoryUsed: number; diskFree: number };
  lastReportAt: number;
}
