/**
 * The agent's half of disconnected nodes, pure: cut off from ZooKeeper and
 * from every manager for the primary's disconnect grace less a margin, the
 * agent stops its tasks itself, so that when the primary migrates them they
 * never run twice. While it still reaches ZooKeeper or a manager it keeps them:
 * the primary then either sees its node or gets its reports. With the whole
 * ZooKeeper down (no quorum) nothing can expire its session, so no primary can
 * migrate its tasks: that counts as contact with ZooKeeper too.
 *
 * The primary starts its grace only once the agent's session has expired, at
 * least a session timeout after the agent last reached ZooKeeper; the agent
 * counts from its last contact, so it stops a session timeout plus the margin
 * before the primary can migrate.
 */

/** Stop this long before the grace ends: a fifth of it, at most 10 s. */
export function cutOffMarginMs(graceMs: number): number {
  return Math.min(10_000, Math.floor(graceMs / 5));
}

export interface Contacts {
  /** Last time the agent's ZooKeeper session was known alive: connected, accepted by a server, or with no quorum that could expire it. */
  zookeeperAt: number;
  /** Last time a manager answered a report. */
  managerAt: number;
}

export function isCutOff(contacts: Contacts, graceMs: number, now: number): boolean {
  return now - Math.max(contacts.zookeeperAt, contacts.managerAt) >= graceMs - cutOffMarginMs(graceMs);
}

/** The tasks to stop once cut off: live ones not already being stopped, but for jobs that chose to keep running. */
export function tasksToStopWhenCutOff<T extends { keepRunning: boolean; live: boolean; stopping: boolean }>(tasks: readonly T[]): T[] {
  return tasks.filter((t) => t.live && !t.stopping && !t.keepRunning);
}
