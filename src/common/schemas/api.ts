import { z } from "zod";
import { AuditEntrySchema } from "../../auth/audit.js";
import { StoredTokenSchema } from "../../auth/token-store.js";
import { FINISHED_STATUSES } from "../../history/record.js";
import { DeviceAssignmentSchema, NodeDeviceGroupSchema } from "../protocol.js";
import { JOB_STATUSES } from "../types.js";
import { JobSchema, TaskInstanceSchema } from "./state.js";

/**
 * The manager API's answers, as zod schemas: the OpenAPI document
 * (`GET /v1/openapi.json`, manager/http/openapi/) is generated from them, and
 * the tests check real answers against them. Envelopes the routes build are
 * strict (a field a route adds must be documented here); the stored records
 * inside them (jobs, tasks, nodes) keep passthrough, as they are read.
 */

const count = z.number().int().min(0);
const time = z.number().describe("milliseconds since the epoch");

/** Every error: `{error: {code, message, field?, line?, column?, issues?}}` (src/http/edge.ts). */
export const ErrorEnvelopeSchema = z
  .object({
    error: z
      .object({
        code: z.string(),
        message: z.string(),
        field: z.string().optional(),
        line: z.number().int().optional(),
        column: z.number().int().optional(),
        issues: z.array(z.object({ field: z.string(), message: z.string(), line: z.number().int().optional(), column: z.number().int().optional() }).strict()).optional(),
      })
      .passthrough(),
  })
  .strict();

export const JobSummarySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    namespace: z.string(),
    type: z.enum(["service", "batch"]),
    priority: z.number(),
    instances: count,
    status: z.enum(JOB_STATUSES),
    desired: z.enum(["run", "stop"]),
    submittedAt: time,
    updatedAt: time,
    tasks: z.record(count).describe("task instances by state"),
    version: count.describe("the running version (docs/deployments.md)"),
    deployment: z.object({ id: z.string(), version: count, status: z.string(), description: z.string() }).passthrough().optional().describe("the live or last rollout"),
  })
  .strict();

export const LeaderAnswerSchema = z.object({ id: z.string(), url: z.string(), epoch: z.number().int(), since: time, self: z.string(), isPrimary: z.boolean() }).strict();
export const HealthAnswerSchema = z.object({ ok: z.literal(true), id: z.string(), primary: z.boolean() }).strict();

export const SubmitAnswerSchema = z
  .object({
    id: z.string(),
    job: JobSummarySchema,
    epoch: z.number().int(),
    version: z.number().int().min(0),
    change: z.enum(["created", "new-version", "unchanged"]),
    message: z.string(),
    diff: z.object({}).passthrough().optional().describe("fields changed and instances replaced, updated in place, added or removed (docs/deployments.md)"),
  })
  .strict();

const PlacementMetricsSchema = z
  .object({
    nodesEvaluated: count,
    nodesFiltered: z.record(z.record(count)),
    nodesExhausted: z.record(count),
    candidates: z.array(z.object({ nodeId: z.string(), score: z.number(), scores: z.record(z.number()) }).strict()),
  })
  .strict();

export const PlanAnswerSchema = z
  .object({
    placeable: z.boolean(),
    placements: z.array(
      z.object({ taskId: z.string(), nodeId: z.string(), score: z.number(), scores: z.record(z.number()), metrics: PlacementMetricsSchema, devices: z.array(DeviceAssignmentSchema).optional().describe("device instances the task would get") }).strict(),
    ),
    unplaced: z.array(
      z
        .object({
          taskId: z.string(),
          reasons: z.record(count),
          summary: z.string(),
          largestFit: z.object({ cpu: z.number(), memory: z.number() }).strict(),
          metrics: PlacementMetricsSchema,
          everyUsableNodeAvoided: z.literal(true).optional(),
          smallestChange: z
            .array(
              z
                .object({
                  text: z.string(),
                  nodes: count,
                  nodeIds: z.array(z.string()),
                  cost: z.number(),
                  resources: z.object({ cpu: z.number(), memory: z.number(), disk: z.number() }).partial().strict().optional(),
                  relaxed: z.string().optional(),
                })
                .strict(),
            )
            .optional()
            .describe("the smallest changes to the request that would fit now, smallest first (docs/scheduler.md)"),
        })
        .passthrough(),
    ),
    preemptions: z.array(z.object({ victimTaskId: z.string(), forTaskId: z.string(), nodeId: z.string() }).strict()),
  })
  .passthrough();

export const JobListSchema = z.object({ jobs: z.array(JobSummarySchema) }).strict();

export const JobDetailSchema = JobSummarySchema.extend({
  spec: z.object({ name: z.string(), namespace: z.string() }).passthrough().describe("the parsed task description (docs/task-file.md)"),
  source: z.string().describe("the task description as submitted"),
  packageDigest: z.string().optional(),
  cron: JobSchema.shape.cron,
  taskList: z.array(TaskInstanceSchema),
}).strict();

export const KillAnswerSchema = z.object({ id: z.string(), desired: z.enum(["run", "stop"]), status: z.enum(JOB_STATUSES) }).strict();

const DemandSchema = z.object({ cpu: z.number(), memory: z.number() }).strict();
export const TaskSchema = TaskInstanceSchema.extend({
  estimate: z
    .object({ request: DemandSchema, reservation: DemandSchema, usage: DemandSchema.optional() })
    .strict()
    .optional()
    .describe("a running task's request, reservation estimate and latest use (cpu in cores, memory in bytes; docs/reclamation.md), when the primary has one"),
});

const ResourcesSchema = z.object({ cpu: z.number(), memory: z.number(), disk: z.number() }).passthrough();

export const NodeSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    host: z.string(),
    state: z.string(),
    capacity: ResourcesSchema,
    allocatable: ResourcesSchema,
    attributes: z.record(z.string()),
    cachedPackages: z.array(z.string()),
    portRange: z.tuple([z.number(), z.number()]),
    drivers: z.object({ lxc: z.boolean(), process: z.boolean() }),
    devices: z.array(NodeDeviceGroupSchema).optional().describe("devices the node offers (docs/deploy.md, Devices)"),
    load: z.object({ cpu1m: z.number(), memoryUsed: z.number(), diskFree: z.number() }).optional(),
    lastReportAt: time,
    tasks: z.array(z.string()).describe("tasks dispatched or running there (of the caller's namespaces)"),
  })
  .passthrough();

export const NodeListSchema = z.object({ nodes: z.array(NodeSchema) }).strict();
export const DrainAnswerSchema = z.object({ id: z.string(), draining: z.boolean() }).strict();
export const ConfirmLostAnswerSchema = z.object({ id: z.string(), lost: z.literal(true), tasks: count }).strict();
export const ReportAnswerSchema = z.object({ epoch: z.number().int(), recorded: z.array(z.string()), disconnectGraceMs: z.number().int() }).strict();

const TaskUsageTotalsSchema = z.object({ cpuSeconds: z.number(), memoryByteSeconds: z.number(), peakMemoryBytes: z.number(), wallSeconds: z.number() }).strict();

export const HistoryPageSchema = z
  .object({
    items: z.array(
      z
        .object({
          job: z.string(),
          jobId: z.string(),
          namespace: z.string(),
          generation: z.number(),
          run: count,
          version: z.number().int(),
          type: z.enum(["service", "batch"]),
          status: z.enum(FINISHED_STATUSES),
          submittedAt: time,
          startedAt: time.optional(),
          finishedAt: time,
          tasks: count,
        })
        .strict(),
    ),
    next: z.string().optional().describe("pass as ?cursor= for the next (older) page"),
  })
  .strict();

export const HistoryJobSchema = z
  .object({
    job: z.string(),
    namespace: z.string(),
    versions: z.array(z.object({ version: z.number().int(), submittedAt: time, generation: z.number(), spec: z.object({}).passthrough(), source: z.string(), live: z.literal(true).optional() }).strict()),
    runs: z.array(
      z
        .object({
          generation: z.number(),
          run: count,
          version: z.number().int(),
          status: z.enum(FINISHED_STATUSES),
          startedAt: time.optional(),
          finishedAt: time,
          tasks: z.array(
            z
              .object({
                id: z.string(),
                state: z.string(),
                exit: z.object({}).passthrough().nullable(),
                node: z.string().nullable(),
                nodes: z.array(z.string()),
                attempts: count,
                reason: z.string().nullable(),
                startedAt: time.optional(),
                finishedAt: time,
                events: z.array(z.object({ at: time, type: z.string(), message: z.string() }).strict()),
                usage: TaskUsageTotalsSchema,
              })
              .strict(),
          ),
        })
        .strict(),
    ),
    live: JobSummarySchema.extend({ generation: z.number(), cron: JobSchema.shape.cron, taskList: z.array(TaskInstanceSchema) }).strict().nullable(),
  })
  .strict();

export const UsageAnswerSchema = z.array(z.object({ key: z.string(), tasks: count, cpuSeconds: z.number(), memoryByteSeconds: z.number(), wallSeconds: z.number() }).strict());

const BandViewSchema = z.object({ cpu: z.number(), memory: z.number(), instances: count.nullable() }).strict();
const BandUseSchema = z.object({ cpu: z.number(), memory: z.number(), instances: count }).strict();
export const QuotaViewSchema = z
  .object({
    namespace: z.string(),
    quota: z.object({ prod: BandViewSchema, batch: BandViewSchema }).strict().nullable(),
    used: z.object({ prod: BandUseSchema, batch: BandUseSchema }).strict(),
    setAt: time.optional(),
    setBy: z.string().optional(),
  })
  .strict();
export const QuotaListSchema = z.object({ quotas: z.array(QuotaViewSchema) }).strict();

export const TokenCreatedSchema = z.object({ name: z.string(), token: z.string().describe("the secret, shown only in this answer"), namespaces: z.array(z.string()), role: z.enum(["read", "submit"]), expiresAt: time.nullable() }).strict();
export const TokenListSchema = z.object({ tokens: z.array(StoredTokenSchema.omit({ sha256: true })) }).strict();
export const TokenRevokedSchema = z.object({ name: z.string(), revoked: z.literal(true) }).strict();
export const AuditAnswerSchema = z.object({ entries: z.array(AuditEntrySchema) }).strict();

export const AlertListSchema = z
  .object({
    alerts: z.array(
      z
        .object({
          id: z.string(),
          key: z.string(),
          kind: z.string(),
          severity: z.enum(["critical", "warning", "info"]),
          channel: z.enum(["email", "sms"]),
          to: z.string(),
          status: z.enum(["pending", "sent", "failed", "retrying", "suppressed", "collapsed"]),
          attempts: count,
          lastError: z.string().optional(),
          createdAt: time,
          updatedAt: time,
          sentAt: time.optional(),
          nextAttemptAt: time.optional(),
          collapsedCount: count.optional(),
          message: z.object({ subject: z.string(), text: z.string(), html: z.string().optional(), short: z.string() }).strict(),
        })
        .strict(),
    ),
  })
  .strict();

export const PackageEntrySchema = z.object({ name: z.string(), version: z.string(), digest: z.string(), size: count, pushedAt: time }).strict();
export const PackageListSchema = z.object({ packages: z.array(PackageEntrySchema) }).strict();
export const PackagePushedSchema = PackageEntrySchema.extend({ created: z.boolean() }).strict();

const EndpointSchema = z.object({ host: z.string(), port: z.number().int(), ports: z.record(z.number().int()), task: z.string(), node: z.string(), job: z.string() }).passthrough();
export const NameResolutionSchema = z.object({ name: z.string(), endpoints: z.array(EndpointSchema), stale: z.boolean(), version: z.number() }).strict();
export const NameListSchema = z
  .object({
    services: z.array(z.object({ name: z.string(), namespace: z.string(), service: z.string(), endpoints: count, nodes: z.array(z.string()), stale: z.boolean() }).strict()),
    stale: z.boolean(),
    zookeeper: z.string(),
  })
  .strict();


export const BlobPeersSchema = z
  .object({
    digest: z.string(),
    peers: z.array(z.object({ id: z.string(), url: z.string(), attributes: z.record(z.string()), load: z.number() }).passthrough()),
    pulling: z.array(z.string()),
  })
  .strict();

/** GET /v1/jobs/:id/versions (docs/deployments.md). */
export const JobVersionsSchema = z
  .object({
    job: z.string(),
    namespace: z.string(),
    version: z.number().int().min(0),
    versions: z.array(
      z
        .object({
          version: z.number().int().min(0),
          submittedAt: z.number(),
          stable: z.boolean(),
          running: z.boolean(),
          revertOf: z.number().int().optional(),
          deployment: z.object({}).passthrough().optional(),
          source: z.string(),
          diff: z.object({}).passthrough().optional(),
        })
        .strict(),
    ),
  })
  .strict();

/** A job's live (or last) deployment with per-version instance counts (deployment/view.ts). */
export const DeploymentViewSchema = z
  .object({
    job: z.string(),
    version: z.number().int().min(0),
    deployment: z.object({ state: z.string() }).passthrough().nullable(),
    update: z.object({}).passthrough(),
    versions: z.array(z.object({ version: z.number().int(), instances: count, healthy: count, unhealthy: count, canaries: count, stopping: count }).strict()),
  })
  .strict();

export const SignalAnswerSchema = z.object({ task: z.string(), attempt: z.number().int(), node: z.string().optional(), signal: z.string() }).strict();
