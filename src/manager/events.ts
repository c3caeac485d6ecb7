import { EventEmitter } from "node:events";

/** What the event stream (`GET /v1/events`, the pages' live updates) carries. */
export const CLUSTER_EVENT_TYPES = ["job", "task", "node", "leader", "alert"] as const;
export type ClusterEventType = (typeof CLUSTER_EVENT_TYPES)[number];

export interface ClusterEvent {
  type: ClusterEventType;
  id: string;
  at: number;
  data: unknown;
}

/** In-process fan-out of cluster events to SSE clients; bounded listeners. */
export class EventBus extends EventEmitter<{ event: [ClusterEvent] }> {
  constructor() {
    super();
    this.setMaxListeners(10_000);
  }

  publish(type: ClusterEventType, id: string, data: unknown): void {
    this.emit("event", { type, id, at: Date.now(), data });
  }
}
