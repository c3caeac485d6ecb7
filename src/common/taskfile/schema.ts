/**
 * The shape of a task file: the allowed keys of every mapping, the defaults of
 * absent fields and the limits the rules enforce. The full reference for users
 * is docs/task-file.md.
 */
import type { AlertOn, PlacementPolicy, Resources, RestartPolicy, UpdatePolicy } from "../types.js";

/** The allowed keys of every mapping in a task file: the single source for unknown-key checks. */
export const SCHEMA_KEYS = {
  job: [
    "name", "namespace", "type", "priority", "instances", "package", "command", "env", "resources", "isolation",
    "user", "constraints", "ports", "service", "restart", "schedule", "notify", "placement",
    "disconnect", "update",
    "alloc",
    "reclaimable",
  ],
  resources: ["cpu", "memory", "disk", "devices"],
  device: ["name", "count", "constraints"],
  constraint: ["attribute", "operator", "value"],
  port: ["name", "static", "check"],
  check: ["type", "path", "interval", "timeout", "failures"],
  service: ["name"],
  restart: ["attempts", "delay", "backoff", "maxDelay"],
  notify: ["email", "sms", "on"],
  placement: ["strategy", "maxPerNode"],
  disconnect: ["keepRunning"],
  alloc: ["resources", "tasks"],
  allocTask: ["name", "command", "env", "ports", "resources"],
  allocTaskResources: ["cpu", "memory"],
  update: ["maxParallel", "maxSurge", "minHealthyTime", "healthyDeadline", "progressDeadline", "canary", "autoPromote", "autoRevert", "drainDelay", "stagger"],
} as const;

/** Values used when a field is absent. Exported so the CLI and docs can show them. */
export const TASKFILE_DEFAULTS = {
  namespace: "default",
  instances: 1,
  resources: { cpu: 0.1, memory: 64 * 1024 ** 2, disk: 256 * 1024 ** 2 } satisfies Resources,
  restart: { attempts: 3, delayMs: 1000, backoff: 2, maxDelayMs: 60_000 } satisfies RestartPolicy,
  check: { path: "/", intervalMs: 5000, timeoutMs: 1000, failures: 3 },
  notifyOn: ["failed", "lost"] as AlertOn[],
  /** No strategy: the cell's `manager.placementStrategy` decides (binpack unless configured). */
  placement: {} satisfies PlacementPolicy,
  update: {
    maxParallel: 1,
    maxSurge: 0,
    minHealthyTimeMs: 10_000,
    healthyDeadlineMs: 300_000,
    progressDeadlineMs: 600_000,
    canary: 0,
    autoPromote: false,
    autoRevert: false,
    // Outlasts the resolvers' propagation of a removed endpoint (tens of milliseconds) by far.
    drainDelayMs: 2000,
    staggerMs: 0,
  } satisfies UpdatePolicy,
} as const;

export const LIMITS = {
  maxInstances: 10_000,
  maxCpu: 1024,
  minMemory: 4 * 1024 ** 2,
  maxPriority: 1000,
  /** Longest duration: timers cannot wait longer than 2^31-1 ms (about 24.8 days) and would fire at once instead. */
  maxDurationMs: 24 * 86_400_000,
  /** Collections inside collections; the deepest valid file needs 4 (ports[0].check.type). */
  maxNesting: 32,
  /** Each alias costs the YAML library a pass over the document; a task file needs few, if any. */
  maxAliases: 100,
  /** Issues reported for one file; past this, a count. Keeps answers and the work of building them small. */
  maxIssues: 100,
  maxServiceName: 253,
  /** Instances of one device a task may ask for. */
  maxDeviceCount: 64,
};

