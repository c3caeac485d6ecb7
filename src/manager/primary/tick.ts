import type { Logger } from "../../common/logger.js";
import type { JobSpec, PlacementStrategy, TaskInstance } from "../../common/types.js";
import { jobIdOf, taskIdOf } from "../../common/types.js";
import type { ZkStateStore } from "../../coord/state-store.js";
import type { Collector } from "../collector/collector.js";
import { isActive } from "../deployment/machine.js";
import { drainDelayOf } from "../deployment/rollouts.js";
import type { Retirer } from "../retention/retirer.js";
import type { LifecycleAlert } from "../lifecycle/transitions.js";
import { placeTasks, type PlacementMetrics, type PlacementResult, type SmallestChange, type TaskToPlace } from "../scheduler/index.js";
import type { ReservationEstimates } from "../usage/reservations.js";
import { AllocationBuilder } from "./allocations.js";
import { tasksToCreate } from "./expand.js";
import { JobStatusWriter } from "./job-status.js";
import { offDrainingNodes } from "./node-events.js";
import type { SchedulerWorkers } from "../placement/workers.js";
import { concurrentPlacementRound, holdingTasks, MAX_TASKS_PER_ROUND, placementRound, type RoundDecision } from "./round.js";
import type { TaskSender } from "./sender.js";
import type { TaskWriter } from "./writer.js";

/** Something kept in ZooKeeper that expires: each tick removes what has. */
export interface Trimmer {
  /** What it trims, for the logs ("idempotency keys"). */
  readonly name: string;
  trim(now: number): Promise<void>;
}

export interface TickDeps {
  store: ZkStateStore;
  collector: Collector;
  writer: TaskWriter;
  sender: TaskSender;
  log: Logger;
  now: () => number;
  isFenced: () => boolean;
  raise: (alerts: readonly LifecycleAlert[]) => void;
  /** Declares lost the disconnected nodes whose grace ran out (disconnected-nodes.ts). */
  loseDisconnectedNodes: () => Promise<void>;
  /** Removes what has outlived its retention besides jobs: expired Idempotency-Keys, expired tokens… */
  trimmers: readonly Trimmer[];
  retirer: Retirer;
  /** When set, rounds are placed by these scheduler workers (placement/concurrent.ts). */
  schedulerWorkers?: SchedulerWorkers;
  /** Told of each placement round and how long it took (ms). */
  observeRound?: (round: RoundDecision, ms: number) => void;
  /** Advances the running workflows (workflow/runner.ts). */
  advanceWorkflows: () => Promise<void>;
  /** Steps every live deployment and carries out its actions (deployment/rollouts.ts). */
  stepDeployments: () => Promise<void>;
  /** Asks for another tick once this one ends: work was left for it (rounds and expansion are bounded). */
  requestTick: () => void;
  /** With reclamation on: the estimates whose unused reservations batch tasks may be placed on. */
  reservations?: ReservationEstimates;
  /** The placement strategy of jobs that name none. */
  placementStrategy?: PlacementStrategy;
}

/**
 * The primary's periodic work, phase by phase: archive and delete finished
 * work past its retention, advance the workflows (whose new jobs the next
 * phase expands), create missing task records,
 * declare lost the disconnected nodes whose grace ran out, move work off draining nodes, run a
 * placement round and carry it out, resend stops, and write job statuses.
 */
export class Tick {
  /** Per task the last round left pending: the scheduler's metrics (why it was not placed). */
  private unplaced = new Map<string, PlacementMetrics>();
  private readonly allocations = new AllocationBuilder();
  private readonly statuses: JobStatusWriter;

  constructor(private readonly d: TickDeps) {
    this.statuses = new JobStatusWriter(d.store);
  }

  /** Each phase runs even when an earlier one failed, so one bad record never stalls the whole cell. */
  async run(): Promise<void> {
    const { store, now } = this.d;
    const phases: [string, () => Promise<void>][] = [
      ["retire finished work", () => this.d.retirer.run()],
      ["advance workflows", () => this.d.advanceWorkflows()],
      ["expand jobs", () => this.expandJobs()],
      ["step deployments", () => this.d.stepDeployments()],
      ["lose disconnected nodes", () => this.d.loseDisconnectedNodes()],
      ["migrate off draining nodes", () => this.migrateOffDrainingNodes()],
      ["schedule and dispatch", () => this.scheduleAndDispatch()],
      ["resend stops", async () => this.d.sender.resendStops([...store.tasksWhere("stop", "dispatched"), ...store.tasksWhere("stop", "running")], (t) => drainDelayOf(store.jobs.get(t.jobId)))],
      ["update job statuses", () => this.statuses.update(now())],
      ...this.d.trimmers.map((t): [string, () => Promise<void>] => [`trim ${t.name}`, () => t.trim(now())]),
    ];
    let first: unknown;
    for (const [name, phase] of phases) {
      if (this.d.isFenced()) return;
      try {
        await phase();
      } catch (e) {
        first ??= e;
        this.d.log.warn({ phase: name, err: e }, "tick phase failed");
      }
    }
    if (first) throw first;
  }

  /** Dry run: where the job's instances would go now, or exactly why not (with the smallest change that would fit). */
  plan(spec: JobSpec, packageDigest?: string): PlacementResult {
    const id = jobIdOf(spec.namespace, spec.name);
    const pending: TaskToPlace[] = Array.from({ length: spec.instances }, (_, i) => ({ taskId: taskIdOf(id, i), jobId: id, spec, ...(packageDigest ? { packageDigest } : {}) }));
    return this.dryRun(pending);
  }

  /** For a job with a pending task: the smallest changes to its request that would let one more instance fit now. */
  smallestChange(jobId: string): SmallestChange[] | undefined {
    const job = this.d.store.jobs.get(jobId);
    const waiting = this.d.store.tasksOf(jobId).find((t) => t.state === "pending");
    if (!job || !waiting) return undefined;
    const result = this.dryRun([{ taskId: waiting.id, jobId, spec: job.spec, ...(job.packageDigest ? { packageDigest: job.packageDigest } : {}) }]);
    return result.unplaced[0]?.smallestChange;
  }

  /** `pending` placed against everything bound to a node now (pending tasks excluded), explaining refusals. */
  private dryRun(pending: TaskToPlace[]): PlacementResult {
    const { store } = this.d;
    const reserved = this.allocations.reservations(store.jobs, store.tasksWhere("run", "pending"));
    for (const group of holdingTasks(store)) this.allocations.reservations(store.jobs, group, reserved);
    return placeTasks(pending, { nodes: this.d.collector.nodes(), allocations: reserved }, { explain: true, ...(this.d.placementStrategy ? { defaultStrategy: this.d.placementStrategy } : {}) });
  }

  pendingMetrics(taskId: string): PlacementMetrics | undefined {
    return this.unplaced.get(taskId);
  }

  /** Killed tasks are no longer pending, whatever the last round found. */
  forget(tasks: readonly TaskInstance[]): void {
    for (const t of tasks) this.unplaced.delete(t.id);
  }

  /** Creates the task records live jobs lack, at most MAX_TASKS_PER_ROUND a tick (the rest next tick). */
  private async expandJobs(): Promise<void> {
    // A job with a live deployment gets its instances from the deployment.
    const creates = tasksToCreate(this.d.store, this.d.now(), { max: MAX_TASKS_PER_ROUND, skip: (job) => this.d.retirer.holdsBack(job.id) || isActive(job.deployment) });
    if (creates.length >= MAX_TASKS_PER_ROUND) this.d.requestTick();
    await this.d.writer.put(creates);
  }

  async migrateOffDrainingNodes(): Promise<void> {
    const draining = new Set(this.d.collector.nodesIn("draining").map((n) => n.id));
    if (draining.size === 0) return;
    const { stops, updates } = offDrainingNodes(draining, this.d.store.allTasks(), this.d.now());
    for (const t of stops) this.d.sender.stop(t, "node draining");
    await this.d.writer.put(updates);
  }

  /** Writes first, then stops; each dispatch is sent once its record (with the new attempt) is durable. */
  private async scheduleAndDispatch(): Promise<void> {
    const { store, collector, sender } = this.d;
    const t0 = performance.now();
    const lent = this.d.reservations?.reclaimableByNode(store.jobs, store.tasksWhere("run", "running"), this.d.now());
    const opts = { reclamation: lent ? { reclaimable: lent } : undefined, defaultStrategy: this.d.placementStrategy };
    const workers = this.d.schedulerWorkers;
    const round = workers ? await concurrentPlacementRound(store, collector.nodes(), this.allocations, this.d.now(), workers, opts) : placementRound(store, collector.nodes(), this.allocations, this.d.now(), opts);
    this.d.observeRound?.(round, performance.now() - t0);
    this.unplaced = round.unplaced;
    if (round.more) this.d.requestTick();
    for (const s of round.stops) sender.stop(s.task, s.why);
    await this.d.writer.put(round.writes);
    this.d.raise(round.alerts);
    await this.d.writer.putThenSend(round.dispatches, (t) => sender.startRecorded(t));
  }
}
