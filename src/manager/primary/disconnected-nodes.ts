import type { Logger } from "../../common/logger.js";
import type { NodeInfo, TaskInstance } from "../../common/types.js";
import type { ZkStateStore } from "../../coord/state-store.js";
import type { Collector } from "../collector/collector.js";
import type { LifecycleAlert } from "../lifecycle/transitions.js";
import { DisconnectTracker, type DisconnectDecision, type DisconnectRules } from "./disconnect.js";
import { onNodeLost, orphansOf } from "./node-events.js";
import type { AlertSink } from "./primary.js";
import type { TaskWriter } from "./writer.js";

export interface DisconnectedNodesDeps {
  store: ZkStateStore;
  collector: Collector;
  writer: TaskWriter;
  log: Logger;
  now: () => number;
  rules: DisconnectRules;
  zookeeperWritable: () => boolean;
  alert: AlertSink;
  raise: (alerts: readonly LifecycleAlert[], node?: NodeInfo) => void;
}

/**
 * The primary's side of disconnected nodes: notes which nodes have no
 * ZooKeeper node (known to the collector as disconnected, or holding tasks
 * but unknown, as after a takeover that followed a ZooKeeper outage), asks
 * the tracker which to declare lost, and carries that out.
 */
export class DisconnectedNodes {
  readonly tracker: DisconnectTracker;
  /** The hold currently alerted about: one alert per hold, not per tick. */
  private alertedHold?: string;

  constructor(private readonly d: DisconnectedNodesDeps) {
    this.tracker = new DisconnectTracker(d.rules);
  }

  async run(): Promise<void> {
    const { store, collector } = this.d;
    const now = this.d.now();
    let cellSize = collector.nodes().length - collector.nodesIn("lost").length;
    const lostWithTasks: string[] = [];
    for (const n of collector.nodesIn("disconnected")) this.tracker.disconnected(n.id, now);
    // Back (ready or draining): nothing more to decide. A lost node stays as the tracker has it.
    for (const id of this.tracker.absentIds()) {
      const state = collector.node(id)?.state;
      if (state !== undefined && state !== "disconnected" && state !== "lost") this.tracker.connected(id);
    }
    for (const id of store.nodesWithTasks()) {
      const n = collector.node(id);
      if (n?.state === "lost") lostWithTasks.push(id);
      else if (!n) {
        cellSize++;
        this.tracker.disconnected(id, now);
      }
    }
    // Tasks still on a node already declared lost (e.g. dispatched just before): they migrate now.
    await this.d.writer.put(orphansOf(lostWithTasks, (id) => store.tasksOnNode(id), store.jobs, now));
    const decision = this.tracker.decide(now, cellSize, this.d.zookeeperWritable());
    this.alertHold(decision, now);
    for (const id of decision.lose) await this.lose(id, now);
  }

  private async lose(id: string, now: number): Promise<void> {
    const { store, collector } = this.d;
    const node = collector.node(id);
    if (!node) {
      await this.d.writer.put(orphansOf([id], (n) => store.tasksOnNode(n), store.jobs, now));
    } else {
      const { updates, alerts } = onNodeLost(node, store.tasksOnNode(id), store.jobs, now);
      this.d.alert("node-lost", `node-lost:${id}:${node.lastReportAt}`, { node, text: `node ${id} (${node.host}) lost; ${updates.length} task(s) affected` });
      await this.d.writer.put(updates);
      this.d.raise(alerts, node);
      await collector.markLost(id, now);
    }
    this.tracker.connected(id);
  }

  private alertHold(decision: DisconnectDecision, now: number): void {
    const held = decision.held;
    if (!held) {
      this.alertedHold = undefined;
      return;
    }
    if (this.alertedHold === held.reason) return;
    this.alertedHold = held.reason;
    const why = held.reason === "mass-loss" ? "more nodes disconnected at once than the mass-loss share allows" : "this primary cannot write to ZooKeeper";
    const text = `migrations of ${held.nodes.length} disconnected node(s) held: ${why}. Waiting for the nodes to return; \`torca node confirm-lost NODE\` migrates one now. Nodes: ${held.nodes.slice(0, 20).join(", ")}`;
    this.d.log.warn({ reason: held.reason, nodes: held.nodes.length }, "migrations held");
    this.d.alert("migration-held", `migration-held:${held.reason}:${now}`, { text });
  }

  /** Tasks affected if the node were declared lost now (for the confirm-lost answer). */
  liveTasksOn(id: string): TaskInstance[] {
    return [...this.d.store.tasksOnNode(id)].filter((t) => t.nodeId === id && (t.state === "running" || t.state === "dispatched"));
  }
}
