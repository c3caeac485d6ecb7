/**
 * Disconnected nodes, pure: when a node without its ZooKeeper node is
 * declared lost (and its tasks migrated), time passed in.
 *
 * A node whose agent znode is gone is only disconnected: ZooKeeper itself may
 * have been frozen or restarted, and the agent keeps its tasks and registers
 * again. It is lost once it has been quiet (no znode, no report) for the
 * grace. A report re-establishes a node even without its znode: the agent is
 * alive and keeps its tasks while it reaches a manager.
 *
 * Nothing is migrated while the primary cannot write to ZooKeeper, nor for
 * nodes caught in a mass loss (more than `massLossShare` of a cell of at least
 * `minNodes` disconnected within `massLossWindowMs`): those are held until they
 * come back or an admin confirms them lost. A node confirmed lost is lost at
 * once, hold or not, as soon as ZooKeeper can be written.
 */

export interface DisconnectRules {
  graceMs: number;
  minNodes: number;
  massLossShare: number;
  massLossWindowMs: number;
}

export type HoldReason = "zookeeper-unwritable" | "mass-loss";

export interface DisconnectDecision {
  /** Nodes to declare lost now (their tasks migrate). */
  lose: string[];
  /** Nodes past the grace whose migration is withheld, and why. */
  held?: { reason: HoldReason; nodes: string[] };
}

interface Absence {
  since: number;
  lastReportAt?: number;
  /** Caught in a mass loss: waits for the node or an admin, whatever the grace. */
  held: boolean;
  confirmed: boolean;
}

export class DisconnectTracker {
  private readonly absent = new Map<string, Absence>();

  constructor(private readonly rules: DisconnectRules) {}

  get graceMs(): number {
    return this.rules.graceMs;
  }

  /** The node has no ZooKeeper node (first sighting counts; later ones keep the first time). */
  disconnected(id: string, now: number): void {
    if (!this.absent.has(id)) this.absent.set(id, { since: now, held: false, confirmed: false });
  }

  /** The node's ZooKeeper node is back (or it was declared lost): nothing more to decide. */
  connected(id: string): void {
    this.absent.delete(id);
  }

  /** A report from the node arrived: it is alive, and its grace starts again. */
  reported(id: string, now: number): void {
    const a = this.absent.get(id);
    if (a) a.lastReportAt = now;
  }

  /** The nodes it counts as disconnected. */
  absentIds(): string[] {
    return [...this.absent.keys()];
  }

  isDisconnected(id: string): boolean {
    return this.absent.has(id);
  }

  /** An admin says the node is gone for good: its tasks migrate at once. */
  confirm(id: string, now: number): void {
    this.disconnected(id, now);
    this.absent.get(id)!.confirmed = true;
  }

  decide(now: number, cellSize: number, zookeeperWritable: boolean): DisconnectDecision {
    if (this.isMassLoss(now, cellSize)) for (const a of this.absent.values()) a.held = true;
    const confirmed: string[] = [];
    const due: string[] = [];
    const heldDue: string[] = [];
    for (const [id, a] of this.absent) {
      if (a.confirmed) confirmed.push(id);
      else if (now - Math.max(a.since, a.lastReportAt ?? a.since) >= this.rules.graceMs) (a.held ? heldDue : due).push(id);
    }
    if (!zookeeperWritable) {
      const waiting = [...confirmed, ...due, ...heldDue];
      return { lose: [], ...(waiting.length ? { held: { reason: "zookeeper-unwritable", nodes: waiting } } : {}) };
    }
    return { lose: [...confirmed, ...due], ...(heldDue.length ? { held: { reason: "mass-loss", nodes: heldDue } } : {}) };
  }

  /** More than the share of a large enough cell disconnected within the window. */
  private isMassLoss(now: number, cellSize: number): boolean {
    const { minNodes, massLossShare, massLossWindowMs } = this.rules;
    if (cellSize < minNodes) return false;
    let recent = 0;
    for (const a of this.absent.values()) if (now - a.since <= massLossWindowMs) recent++;
    return recent > massLossShare * cellSize;
  }
}
