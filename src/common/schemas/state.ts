import { z } from "zod";
import { DeviceAssignmentSchema } from "../protocol.js";
import { DEPLOYMENT_STATUSES, JOB_STATUSES, type Job, type JobSpec, type TaskInstance } from "../types.js";

/**
 * Schemas of the cell state stored in ZooKeeper: jobs at `<root>/jobs/<id>`
 * and task instances in chunks at `<root>/jobs/<id>/tasks/c<k>`. Unknown fields are
 * kept (passthrough), so a copy that rewrites a record never drops what a
 * newer writer added.
 */

const ExitInfoSchema = z
  .object({
    exitCode: z.number().int().nullable(),
    signal: z.string().nullable(),
    oomKilled: z.boolean(),
    reason: z.string(),
  })
  .passthrough();

const TaskEventSchema = z.object({ at: z.number(), type: z.string(), message: z.string() }).passthrough();

export const TaskInstanceSchema = z
  .object({
    id: z.string().min(1),
    jobId: z.string().min(1),
    index: z.number().int().min(0),
    run: z.number().int().min(0),
    desired: z.enum(["run", "stop"]),
    state: z.enum(["pending", "dispatched", "running", "completed", "failed", "killed", "lost"]),
    attempt: z.number().int().min(0),
    restartsOnNode: z.number().int().min(0),
    migrations: z.number().int().min(0),
    nodeId: z.string().optional(),
    lastNodeId: z.string().optional(),
    stickyNode: z.string().optional(),
    avoidNodes: z.array(z.string()).optional(),
    dispatchedAt: z.number().optional(),
    ports: z.record(z.number().int()).optional(),
    devices: z.array(DeviceAssignmentSchema).optional(),
    exit: ExitInfoSchema.optional(),
    reason: z.string().optional(),
    notBefore: z.number().optional(),
    createdAt: z.number(),
    updatedAt: z.number(),
    startedAt: z.number().optional(),
    finishedAt: z.number().optional(),
    events: z.array(TaskEventSchema),
    usage: z.object({ cpuSeconds: z.number(), memoryByteSeconds: z.number(), peakMemoryBytes: z.number(), wallSeconds: z.number() }).optional(),
    version: z.number().int().min(0).optional(),
    versionSince: z.number().optional(),
    healthy: z.boolean().optional(),
    healthySince: z.number().optional(),
    canary: z.boolean().optional(),
    members: z.array(z.object({ name: z.string(), state: z.enum(["starting", "running", "exited"]), exit: ExitInfoSchema.optional() }).passthrough()).optional(),
    reclaimed: z.boolean().optional(),
  })
  .passthrough() satisfies z.ZodType<TaskInstance, z.ZodTypeDef, unknown>;

/**
 * The job spec inside a stored job was validated by the task file parser at
 * submission (taskfile.ts, the one schema of task files); the stored copy is
 * checked to be an object and trusted as that spec.
 */
const StoredJobSpecSchema = z.custom<JobSpec>((v) => typeof v === "object" && v !== null && !Array.isArray(v), { message: "Expected the job spec object" });

const DeploymentSchema = z
  .object({
    id: z.string(),
    version: z.number().int().min(0),
    status: z.enum(DEPLOYMENT_STATUSES),
    description: z.string(),
    startedAt: z.number(),
    progressAt: z.number(),
    healthy: z.number().int().min(0),
    promoted: z.boolean(),
    lastBatchAt: z.number().optional(),
    stableVersion: z.number().int().min(0).optional(),
    restartAt: z.number().optional(),
    allAtOnce: z.boolean().optional(),
    finishedAt: z.number().optional(),
  })
  .passthrough();

export const JobSchema = z
  .object({
    id: z.string().min(1),
    spec: StoredJobSpecSchema,
    source: z.string(),
    status: z.enum(JOB_STATUSES),
    desired: z.enum(["run", "stop"]),
    submittedAt: z.number(),
    updatedAt: z.number(),
    packageDigest: z.string().optional(),
    cron: z.object({ lastFiring: z.number().optional(), runs: z.number().int().min(0), retiredRun: z.number().int().min(0).optional() }).passthrough().optional(),
    version: z.number().int().min(0).optional(),
    deployment: DeploymentSchema.optional(),
  })
  .passthrough() satisfies z.ZodType<Job, z.ZodTypeDef, unknown>;
