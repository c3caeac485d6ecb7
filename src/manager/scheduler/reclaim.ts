/**
 * Reclaimed capacity (docs/reclamation.md): per node, what prod tasks reserved
 * but are estimated not to use. Only classes that may use it see it (batch
 * tasks of reclaimable jobs, `TaskToPlace.reclaimable`): for them the
 * resources check counts prod reservations at their estimate instead of their
 * request (checkers/reclaimed-resources.ts). Everything else is still placed
 * against requests, so prod work never relies on capacity that can vanish.
 */
import type { ClusterSnapshot } from "./types.js";

/** Per node index: cores and bytes reclaimable there. */
export interface ReclaimableCapacity {
  readonly cpu: Float64Array;
  readonly memory: Float64Array;
}

/** The snapshot's reclaimable capacity by node index; undefined when it lends none. */
export function reclaimableCapacityOf(snapshot: ClusterSnapshot, indexOf: (nodeId: string) => number | undefined, size: number): ReclaimableCapacity | undefined {
  const byNode = snapshot.reclaimable;
  if (byNode === undefined || byNode.size === 0) return undefined;
  const cpu = new Float64Array(size);
  const memory = new Float64Array(size);
  for (const [nodeId, lent] of byNode) {
    const index = indexOf(nodeId);
    if (index === undefined) continue;
    cpu[index] = Math.max(0, lent.cpu);
    memory[index] = Math.max(0, lent.memory);
  }
  return { cpu, memory };
}

/** A placement of `need` on a node with `freeCpu`/`freeMemory` left (before it) digs into reclaimed capacity. */
export function usesReclaimed(freeCpu: number, freeMemory: number, need: { cpu: number; memory: number }, epsilon: number): boolean {
  return freeCpu < need.cpu - epsilon || freeMemory < need.memory - epsilon;
}
