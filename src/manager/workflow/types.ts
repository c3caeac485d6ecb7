/**
 * Workflows (docs/workflows.md): named nodes, each a batch job, with edges
 * (`after`), a condition on the parents' outcomes (`when`), retries, optional
 * PRE and POST commands and a throttle, in the manner of HTCondor's DAGMan.
 * The definition is validated once (parse.ts); its progress is one record per
 * workflow in ZooKeeper (store.ts), advanced by a pure function (decide.ts).
 */
import { z } from "zod";
import type { JobSpec } from "../../common/types.js";

/** Which outcomes of the parents let a node run (Slurm's afterok, afterany, afternotok). */
export const WHEN = ["ok", "any", "failed"] as const;
export type When = (typeof WHEN)[number];

export interface WorkflowNodeDef {
  name: string;
  after: string[];
  when: When;
  /** Attempts after the first one (DAGMan's RETRY). */
  retry: number;
  pre?: string[];
  post?: string[];
  /** The node's job, as submitted: name and namespace are replaced by the node's job name (jobNameOf). */
  job: JobSpec;
  /** The content digest of the job's package, resolved when the workflow was submitted. */
  packageDigest?: string;
}

export interface WorkflowDef {
  name: string;
  namespace: string;
  /** At most this many nodes active (PRE, job or POST) at once; absent: no limit. */
  throttle?: number;
  vars: Record<string, string>;
  /** In the order of the file. */
  nodes: WorkflowNodeDef[];
}

/** The phases of one attempt: PRE (optional), the job, POST (optional). */
export const PHASES = ["pre", "job", "post"] as const;
export type Phase = (typeof PHASES)[number];

export const NODE_STATES = ["waiting", "pre", "running", "post", "succeeded", "failed", "skipped", "killed"] as const;
export type NodeStateName = (typeof NODE_STATES)[number];
/** A node in one of these has a job of the current attempt (or is about to). */
export const ACTIVE_NODE_STATES: ReadonlySet<NodeStateName> = new Set(["pre", "running", "post"]);
export const FINAL_NODE_STATES: ReadonlySet<NodeStateName> = new Set(["succeeded", "failed", "skipped", "killed"]);

export const WORKFLOW_STATES = ["running", "succeeded", "failed", "killed"] as const;
export type WorkflowState = (typeof WORKFLOW_STATES)[number];

const NodeRecordSchema = z.object({
  state: z.enum(NODE_STATES),
  /** 1 for the first attempt; 0 before any. Reset by `resume`. */
  attempt: z.number().int().min(0),
  /**
   * The submission number of the current phase's job (unique within the
   * workflow, never reused): the job carries it in TORCA_WORKFLOW_RUN, so the
   * primary tells this attempt's job from an earlier one of the same name.
   */
  seq: z.number().int().min(0),
  /** The job of the current (or last) phase. */
  job: z.string().optional(),
  /** How the last job of the node ended (POST sees it as TORCA_JOB_STATUS). */
  jobStatus: z.enum(["complete", "failed"]).optional(),
  reason: z.string().optional(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
});
export type NodeRecord = z.infer<typeof NodeRecordSchema>;

const StoredJobSpecSchema = z.custom<JobSpec>((v) => typeof v === "object" && v !== null && !Array.isArray(v), { message: "Expected the job spec object" });

const WorkflowDefSchema = z.object({
  name: z.string(),
  namespace: z.string(),
  throttle: z.number().int().optional(),
  vars: z.record(z.string()),
  nodes: z.array(
    z.object({
      name: z.string(),
      after: z.array(z.string()),
      when: z.enum(WHEN),
      retry: z.number().int(),
      pre: z.array(z.string()).optional(),
      post: z.array(z.string()).optional(),
      job: StoredJobSpecSchema,
      packageDigest: z.string().optional(),
    }),
  ),
});

/** One workflow as stored in ZooKeeper: the definition and each node's progress. */
export const WorkflowRecordSchema = z.object({
  /** Random per submission: a workflow submitted again under the same name never adopts the old one's jobs. */
  uid: z.string(),
  def: WorkflowDefSchema,
  /** The workflow file as submitted, for display. */
  source: z.string(),
  state: z.enum(WORKFLOW_STATES),
  desired: z.enum(["run", "stop"]),
  submittedAt: z.number(),
  updatedAt: z.number(),
  finishedAt: z.number().optional(),
  /** The last submission number handed out (NodeRecord.seq). */
  seq: z.number().int().min(0),
  /** Times `resume` reran what had not succeeded. */
  resumes: z.number().int().min(0),
  nodes: z.record(NodeRecordSchema),
});
export type WorkflowRecord = z.infer<typeof WorkflowRecordSchema>;

/** `WORKFLOW.NODE`, `WORKFLOW.NODE.pre`, `WORKFLOW.NODE.post`: a dot never appears in a submitted job's name, so these never collide with one. */
export function jobNameOf(workflow: string, node: string, phase: Phase): string {
  return phase === "job" ? `${workflow}.${node}` : `${workflow}.${node}.${phase}`;
}

/** The workflow's id: `NAME` in the default namespace, `NS:NAME` elsewhere (as job ids). */
export function workflowIdOf(namespace: string, name: string): string {
  return namespace === "default" ? name : `${namespace}:${name}`;
}
