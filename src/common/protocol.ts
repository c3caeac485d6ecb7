import { z } from "zod";
import { ValidationError } from "./errors.js";
import { safeParseFast } from "./fast-check.js";
import { ALLOC_MEMBER_NAME_RE, type DeviceAssignment, type ExitInfo, type JobSpec } from "./types.js";

/**
 * The manager ⇄ agent wire protocol. Both sides validate bodies with these
 * schemas at the border; the types inside are trusted afterwards.
 */

export interface TaskDispatch {
  epoch: number;
  taskId: string;
  jobId: string;
  index: number;
  attempt: number;
  /** Which task of that id: its record's creation time (TaskDispatchSchema). */
  incarnation?: number;
  spec: JobSpec;
  packageDigest?: string;
  /** Placed on reclaimed capacity: the agent may throttle it, then evict it (docs/reclamation.md). */
  reclaimed?: boolean;
  /** The device instances the scheduler gave this attempt (the spec's `resources.devices`, made concrete). */
  devices?: DeviceAssignment[];
}

const AllocDispatchSchema = z.object({
  tasks: z
    .array(
      z.object({
        name: z.string().regex(ALLOC_MEMBER_NAME_RE),
        command: z.array(z.string()).min(1),
        env: z.record(z.string()),
        ports: z.array(z.string()),
        resources: z.object({ cpu: z.number().positive().optional(), memory: z.number().min(0).optional() }).optional(),
      }),
    )
    .min(1),
});

/** Device instances by name, as dispatches and task records carry them. */
export const DeviceAssignmentSchema = z.object({ name: z.string().min(1).max(200), ids: z.array(z.string().min(1).max(200)).max(64) }).strict();

/** The devices of one kind a node offers (agent ad). */
export const NodeDeviceGroupSchema = z
  .object({
    name: z.string().min(1).max(200),
    shareable: z.boolean(),
    instances: z.array(z.object({ id: z.string().min(1).max(200), attributes: z.record(z.string()) }).strict()).max(1024),
  })
  .strict();

/**
 * A dispatch as agents (real and simulated) check it. The job spec inside was
 * validated by the manager at submission; agents check the envelope and the
 * fields they act on.
 */
export const TaskDispatchSchema = z
  .object({
    epoch: z.number().int().min(0),
    taskId: z.string().min(1).max(300),
    jobId: z.string().min(1),
    index: z.number().int().min(0),
    attempt: z.number().int().min(1),
    /**
     * Which task of that id (its record's creation time): a job submitted again under the same name after the
     * last one was retired numbers its attempts from 1 again, and its orders must not be taken for the old ones.
     */
    incarnation: z.number().optional(),
    packageDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/).optional(),
    reclaimed: z.boolean().optional(),
    devices: z.array(DeviceAssignmentSchema).max(64).optional(),
    spec: z
      .object({
        command: z.array(z.string()),
        env: z.record(z.string()),
        resources: z.object({ cpu: z.number().positive(), memory: z.number().min(0), disk: z.number().min(0) }),
        ports: z.array(z.object({ name: z.string(), static: z.number().int().optional() }).passthrough()),
        isolation: z.enum(["lxc", "process"]).optional(),
        alloc: AllocDispatchSchema.optional(),
      })
      .passthrough()
      // An alloc's members carry the commands (docs/allocs.md); any other task has its own.
      .refine((s) => s.alloc !== undefined || s.command.length > 0, { message: "command must not be empty", path: ["command"] }),
  })
  .strict();

/** At most this many start orders go in one batch (POST /v1/tasks/batch). */
export const MAX_DISPATCH_BATCH = 500;

/**
 * Start orders for one agent in one request: each is carried out and answered
 * on its own, exactly as the same TaskDispatch sent alone (PUT /v1/tasks/:id).
 * A task appears at most once in a batch.
 */
export const TaskBatchSchema = z
  .object({ tasks: z.array(TaskDispatchSchema).min(1).max(MAX_DISPATCH_BATCH) })
  .strict()
  .refine((b) => new Set(b.tasks.map((t) => t.taskId)).size === b.tasks.length, { message: "a task appears more than once", path: ["tasks"] });

/** The answer to one start order of a batch: accepted (`created` false: it was there already), or refused with the error PUT would have answered (`error`, with its HTTP `status`). */
export const TaskBatchResultSchema = z.object({
  taskId: z.string(),
  attempt: z.number().int(),
  created: z.boolean().optional(),
  state: z.string().optional(),
  error: z.object({ status: z.number().int(), code: z.string(), message: z.string(), field: z.string().optional() }).optional(),
});
export type TaskBatchResult = z.infer<typeof TaskBatchResultSchema>;
export const TaskBatchReplySchema = z.object({ results: z.array(TaskBatchResultSchema) });
export type TaskBatchReply = z.infer<typeof TaskBatchReplySchema>;

export const StopRequestSchema = z.object({ epoch: z.number().int().min(0), attempt: z.number().int().min(0).optional(), graceMs: z.number().int().min(0).max(600_000).optional(), drainMs: z.number().int().min(0).max(3_600_000).optional() }).strict();
export type StopRequest = z.infer<typeof StopRequestSchema>;

/** Signals `torca signal` may send (the ones services conventionally handle). */
export const TASK_SIGNALS = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGKILL", "SIGUSR1", "SIGUSR2"] as const;
export const SignalRequestSchema = z.object({ epoch: z.number().int().min(0), attempt: z.number().int().min(1), signal: z.enum(TASK_SIGNALS) }).strict();
export type SignalRequest = z.infer<typeof SignalRequestSchema>;

const ExitInfoSchema = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  oomKilled: z.boolean(),
  reason: z.string(),
});

export const ReportedTaskSchema = z.object({
  taskId: z.string().min(1),
  attempt: z.number().int().min(0),
  /** The dispatch's incarnation, when it carried one. */
  incarnation: z.number().optional(),
  state: z.enum(["starting", "running", "exited"]),
  exit: ExitInfoSchema.optional(),
  ports: z.record(z.number().int()).optional(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  healthy: z.boolean().optional(),
  // sampledAt: when the agent read the counters (its clock, ms); a rate is worked out between two of its readings, never against when reports arrived.
  usage: z.object({ cpuNs: z.number(), memoryBytes: z.number(), memoryPeakBytes: z.number(), pids: z.number(), sampledAt: z.number() }).partial().optional(),
  error: z.string().optional(),
  /** An alloc's members (docs/allocs.md). */
  members: z.array(z.object({ name: z.string(), state: z.enum(["starting", "running", "exited"]), exit: ExitInfoSchema.optional() })).optional(),
  /** The agent evicted this reclaimed attempt to give its owners back their reservation (why): back to pending, not a failure. */
  evicted: z.string().optional(),
});
export type ReportedTask = z.infer<typeof ReportedTaskSchema> & { exit?: ExitInfo };

export const AgentReportSchema = z.object({
  agentId: z.string().min(1),
  /** The full list of tasks the agent holds (level-triggered reconcile), not just changes. */
  tasks: z.array(ReportedTaskSchema),
  cachedPackages: z.array(z.string()).default([]),
  load: z.object({ cpu1m: z.number(), memoryUsed: z.number(), diskFree: z.number() }).optional(),
  /** Peers that served this agent a blob not matching its digest since its last answered report (docs/packages.md). */
  peerCorruptions: z.array(z.object({ peer: z.string().min(1), url: z.string(), digest: z.string(), actual: z.string() })).max(100).optional(),
});
export type AgentReport = z.infer<typeof AgentReportSchema>;

/** The primary's answer to a report: its epoch, and the reported exits it has recorded ("taskId#attempt"). */
/** `disconnectGraceMs`: the primary's disconnect grace, which the agent's cut-off stop counts against (agent/cut-off.ts). */
export const ReportReplySchema = z.object({ epoch: z.number().int().min(0), recorded: z.array(z.string()).default([]), disconnectGraceMs: z.number().int().min(0).optional() });
export type ReportReply = z.infer<typeof ReportReplySchema>;

/** Agent znode data (ephemeral, /agents/<id>): who it is and what it offers. */
export const AgentAdSchema = z.object({
  id: z.string(),
  url: z.string(),
  host: z.string(),
  capacity: z.object({ cpu: z.number(), memory: z.number(), disk: z.number() }),
  allocatable: z.object({ cpu: z.number(), memory: z.number(), disk: z.number() }),
  attributes: z.record(z.string()),
  portRange: z.tuple([z.number(), z.number()]),
  drivers: z.object({ lxc: z.boolean(), process: z.boolean() }),
  cachedPackages: z.array(z.string()).default([]),
  /** Digests whose blobs this agent serves to its peers at `GET {url}/v1/blobs/:digest`. */
  blobs: z.array(z.string()).optional(),
  /** Devices the agent offers (agent/devices/); absent on agents without any. */
  devices: z.array(NodeDeviceGroupSchema).max(64).optional(),
  load: z.object({ cpu1m: z.number(), memoryUsed: z.number(), diskFree: z.number() }).optional(),
  startedAt: z.number(),
});
export type AgentAd = z.infer<typeof AgentAdSchema>;

/** Parses a body with a schema, turning zod issues into one ValidationError naming each field. */
export function parseBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.output<T> {
  const r = safeParseFast(schema, body);
  if (r.success) return r.data;
  throw new ValidationError(r.error.issues.map((i) => ({ field: i.path.join("."), message: i.message })));
}
