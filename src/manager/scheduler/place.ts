/**
 * placeTasks: the scheduler's entry point. Tasks go in priority order (stable
 * by input order within a priority); each is placed on the best-scoring of up
 * to `sampleSize` feasible nodes, or placed by preempting lower-priority work,
 * or reported unplaced with the reason every node rejected it.
 */
import { TorcaError } from "../../common/errors.js";
import type { NodeInfo } from "../../common/types.js";
import { assignDevices } from "./checkers/devices.js";
import { assertValidResources, ClusterState } from "./cluster-state.js";
import { findPreemption } from "./preempt.js";
import { copyMetrics, metricsOf, scoresByName } from "./metrics.js";
import { reasonRecord, summarizeReasons } from "./reasons.js";
import { seededRandom } from "./random.js";
import { usesReclaimed } from "./reclaim.js";
import { RESOURCE_EPSILON } from "./checkers/resources.js";
import { NodeScanner } from "./scan.js";
import { smallestChanges } from "./smallest-change.js";
import { type ClassFailure, type TaskClass, TaskClassRegistry } from "./task-class.js";
import { DEFAULT_SAMPLE_SIZE, type Allocation, type ClusterSnapshot, type PlacementMetrics, type PlacementResult, type SchedulerOptions, type TaskToPlace } from "./types.js";

function invalid(message: string): TorcaError {
  return new TorcaError("internal", `scheduler: ${message}`);
}

/** Inputs that cannot come from a correct caller are bugs: they throw. */
function validate(pending: readonly TaskToPlace[], sampleSize: number): void {
  if (!Number.isInteger(sampleSize) || sampleSize < 1) throw invalid(`sampleSize must be a positive integer, got ${sampleSize}`);
  const seen = new Set<string>();
  for (const task of pending) {
    if (seen.has(task.taskId)) throw invalid(`task ${task.taskId} is pending twice`);
    seen.add(task.taskId);
    assertValidResources(task.spec.resources, `task ${task.taskId}`);
    if (!Number.isFinite(task.spec.priority)) throw invalid(`task ${task.taskId} has priority ${task.spec.priority}`);
    const max = task.spec.placement.maxPerNode;
    if (max !== undefined && !(Number.isInteger(max) && max >= 0)) throw invalid(`task ${task.taskId} has maxPerNode ${max}`);
  }
}

/** Indexes of `pending` by descending priority; Array.prototype.sort is stable. */
function priorityOrder(pending: readonly TaskToPlace[]): number[] {
  const order = pending.map((_, i) => i);
  order.sort((a, b) => (pending[b] as TaskToPlace).spec.priority - (pending[a] as TaskToPlace).spec.priority);
  return order;
}

/** Every ready node is one the class avoids (and there is at least one ready node). */
function everyUsableNodeAvoided(cls: TaskClass, state: ClusterState): boolean {
  if (cls.avoidNodes.length === 0 || state.readyCount === 0) return false;
  let avoidedReady = 0;
  for (const id of new Set(cls.avoidNodes)) {
    const index = state.indexOf(id);
    if (index !== undefined && state.ready[index] === 1) avoidedReady++;
  }
  return avoidedReady === state.readyCount;
}

/** The largest cpu and the largest memory free on any single ready node. */
function largestFit(state: ClusterState): { cpu: number; memory: number } {
  let cpu = 0;
  let memory = 0;
  for (let i = 0; i < state.size; i++) {
    if (state.ready[i] !== 1) continue;
    cpu = Math.max(cpu, state.freeCpu[i] as number);
    memory = Math.max(memory, state.freeMemory[i] as number);
  }
  return { cpu, memory };
}

export function placeTasks(pending: TaskToPlace[], snapshot: ClusterSnapshot, opts: SchedulerOptions = {}): PlacementResult {
  const sampleSize = opts.sampleSize ?? DEFAULT_SAMPLE_SIZE;
  validate(pending, sampleSize);

  const state = new ClusterState(snapshot, new Set(pending.map((t) => t.jobId)));
  try {
    return placeOnState(pending, state, opts, sampleSize);
  } finally {
    state.restore();
  }
}

function placeOnState(pending: TaskToPlace[], state: ClusterState, opts: SchedulerOptions, sampleSize: number): PlacementResult {
  const reasons = state.index.reasons;
  reasons.beginCall();
  const classes = new TaskClassRegistry(state, reasons, { pending, ...(opts.defaultStrategy ? { defaultStrategy: opts.defaultStrategy } : {}) });
  const start = Math.floor(seededRandom(opts.seed ?? 0)() * state.size);
  const scanner = new NodeScanner(state, reasons, sampleSize, start);
  const result: PlacementResult = { placements: [], unplaced: [], preemptions: [] };

  const bind = (task: TaskToPlace, cls: TaskClass, node: number, score: number, scores: Record<string, number>, metrics: PlacementMetrics): void => {
    const nodeInfo = state.nodes[node] as NodeInfo;
    const reclaimed = cls.reclaimable && usesReclaimed(state.freeCpu[node] as number, state.freeMemory[node] as number, cls, RESOURCE_EPSILON);
    const devices = assignDevices(cls, state, node);
    result.placements.push({ taskId: task.taskId, nodeId: nodeInfo.id, score, scores, metrics, ...(reclaimed ? { reclaimed: true as const } : {}), ...(devices ? { devices } : {}) });
    const alloc: Allocation = {
      taskId: task.taskId,
      jobId: task.jobId,
      nodeId: nodeInfo.id,
      resources: task.spec.resources,
      priority: cls.priority,
      staticPorts: cls.staticPorts,
      ...(devices ? { devices } : {}),
    };
    state.place(node, alloc);
  };

  const reportUnplaced = (task: TaskToPlace, failure: ClassFailure): void => {
    result.unplaced.push({
      ...failure,
      taskId: task.taskId,
      reasons: { ...failure.reasons },
      largestFit: { ...failure.largestFit },
      metrics: copyMetrics(failure.metrics),
      ...(failure.smallestChange ? { smallestChange: failure.smallestChange.map((c) => ({ ...c, nodeIds: [...c.nodeIds], ...(c.resources ? { resources: { ...c.resources } } : {}) })) } : {}),
    });
  };

  for (const index of priorityOrder(pending)) {
    const task = pending[index] as TaskToPlace;
    const cls = classes.classOf(task);

    // Placements only consume resources: a class that fit nowhere still fits
    // nowhere unless a preemption released something since.
    if (cls.failure !== undefined && cls.exhaustedAtEpoch === state.releaseEpoch) {
      reportUnplaced(task, cls.failure);
      continue;
    }

    scanner.scan(cls);
    const metrics = metricsOf(scanner, cls.chain, state, reasons);
    if (scanner.bestNode >= 0) {
      bind(task, cls, scanner.bestNode, scanner.bestScore, metrics.candidates[0]?.scores ?? {}, metrics);
      continue;
    }

    const plan = findPreemption(cls, state, scanner.cursor, sampleSize);
    if (plan !== undefined) {
      const nodeId = (state.nodes[plan.node] as NodeInfo).id;
      for (const victim of plan.victims) {
        state.evict(plan.node, victim);
        result.preemptions.push({ victimTaskId: victim.taskId, forTaskId: task.taskId, nodeId });
      }
      const values = new Float64Array(cls.chain.scorerNames.length);
      const score = cls.chain.score(plan.node, values);
      const scores = scoresByName(cls.chain, values, 0);
      bind(task, cls, plan.node, score, scores, { ...metrics, candidates: [{ nodeId, score, scores }] });
      continue;
    }

    // The scan visited every node, so its counts explain every node's refusal.
    const reasonsByText = reasonRecord(reasons, scanner.reasonCounts);
    cls.failure = {
      reasons: reasonsByText,
      summary: summarizeReasons(reasonsByText),
      largestFit: largestFit(state),
      metrics,
      ...(everyUsableNodeAvoided(cls, state) ? { everyUsableNodeAvoided: true as const } : {}),
      ...(opts.explain ? { smallestChange: smallestChanges(cls, state, (spec) => classes.variant(task, spec)) } : {}),
    };
    cls.exhaustedAtEpoch = state.releaseEpoch;
    reportUnplaced(task, cls.failure);
  }
  return result;
}
