/** What node loss, node disappearance and draining do to the tasks on those nodes, pure. */
import type { Job, NodeInfo, TaskInstance } from "../../common/types.js";
import { drained, nodeLost, type LifecycleAlert } from "../lifecycle/transitions.js";

function isLive(t: TaskInstance): boolean {
  return t.state === "dispatched" || t.state === "running";
}

/** A node was declared lost: its tasks are rescheduled (or lost, when being stopped). */
export function onNodeLost(node: NodeInfo, tasks: Iterable<TaskInstance>, jobs: ReadonlyMap<string, Job>, now: number): { updates: TaskInstance[]; alerts: LifecycleAlert[] } {
  const updates: TaskInstance[] = [];
  const alerts: LifecycleAlert[] = [];
  for (const t of tasks) {
    if (t.nodeId !== node.id || !isLive(t)) continue;
    const transition = nodeLost(t, jobs.get(t.jobId), node.id, now);
    updates.push(transition.next);
    alerts.push(...transition.alerts);
  }
  return { updates, alerts };
}

/** Tasks bound to nodes that are gone (e.g. lost while no primary was watching). */
export function orphansOf(goneNodes: Iterable<string>, tasksOnNode: (id: string) => Iterable<TaskInstance>, jobs: ReadonlyMap<string, Job>, now: number): TaskInstance[] {
  const updates: TaskInstance[] = [];
  for (const id of goneNodes) {
    for (const t of tasksOnNode(id)) if (isLive(t)) updates.push(nodeLost(t, jobs.get(t.jobId), id, now, "gone").next);
  }
  return updates;
}

/** Live tasks wanted on draining nodes: each is stopped there and goes back to pending. */
export function offDrainingNodes(draining: ReadonlySet<string>, tasks: Iterable<TaskInstance>, now: number): { stops: TaskInstance[]; updates: TaskInstance[] } {
  const stops: TaskInstance[] = [];
  const updates: TaskInstance[] = [];
  for (const t of tasks) {
    if (!t.nodeId || !draining.has(t.nodeId) || t.desired !== "run" || !isLive(t)) continue;
    stops.push(t);
    updates.push(drained(t, now));
  }
  return { stops, updates };
}
