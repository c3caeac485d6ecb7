/**
 * A pool of scheduler workers (worker.ts). A worker keeps the nodes array it
 * was last sent and gets it again only when the primary's array is another
 * one; a package list the collector updates in place reaches a worker with
 * the next new array (it only moves the package-cached score).
 */
import { Worker } from "node:worker_threads";
import { TorcaError } from "../../common/errors.js";
import type { NodeInfo } from "../../common/types.js";
import type { ClusterSnapshot, PlacementResult, SchedulerOptions, TaskToPlace } from "../scheduler/index.js";
import { encodeAllocations, type PlanReply, type PlanRequest } from "./snapshot.js";

interface Slot {
  worker: Worker;
  /** The nodes array this worker holds. */
  nodes: readonly NodeInfo[] | undefined;
  waiting: Map<number, { resolve: (r: PlacementResult) => void; reject: (e: Error) => void }>;
  exited: boolean;
}

export class SchedulerWorkers {
  private readonly slots: Slot[] = [];
  private readonly nodesKeys = new WeakMap<readonly NodeInfo[], number>();
  private nextKey = 1;
  private nextId = 1;

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL("./worker.js", import.meta.url));
      const slot: Slot = { worker, nodes: undefined, waiting: new Map(), exited: false };
      worker.on("message", (reply: PlanReply) => {
        const pending = slot.waiting.get(reply.id);
        slot.waiting.delete(reply.id);
        if (slot.waiting.size === 0) worker.unref();
        if ("result" in reply) pending?.resolve(reply.result);
        else pending?.reject(new TorcaError("internal", `scheduler worker: ${reply.error}`));
      });
      worker.on("error", (e) => this.failAll(slot, e));
      worker.on("exit", (code) => {
        slot.exited = true;
        this.failAll(slot, new TorcaError("internal", `scheduler worker exited (code ${code})`));
      });
      // An idle worker does not keep the process alive; one with a plan to answer does.
      worker.unref();
      this.slots.push(slot);
    }
  }

  /** Plans `tasks` on `snapshot` in worker `index`. */
  plan(index: number, snapshot: ClusterSnapshot, tasks: TaskToPlace[], opts: SchedulerOptions): Promise<PlacementResult> {
    const slot = this.slots[index % this.slots.length] as Slot;
    if (slot.exited) return Promise.reject(new TorcaError("internal", "scheduler worker exited"));
    let nodesKey = this.nodesKeys.get(snapshot.nodes);
    if (nodesKey === undefined) this.nodesKeys.set(snapshot.nodes, (nodesKey = this.nextKey++));
    const req: PlanRequest = { id: this.nextId++, nodesKey, allocations: encodeAllocations(snapshot.nodes, snapshot.allocations), tasks, opts };
    if (slot.nodes !== snapshot.nodes) {
      req.nodes = [...snapshot.nodes];
      slot.nodes = snapshot.nodes;
    }
    return new Promise((resolve, reject) => {
      slot.waiting.set(req.id, { resolve, reject });
      slot.worker.ref();
      slot.worker.postMessage(req);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private failAll(slot: Slot, e: Error): void {
    for (const pending of slot.waiting.values()) pending.reject(e);
    slot.waiting.clear();
    // The next request resends the nodes (a replaced worker would lack them).
    slot.nodes = undefined;
  }
}
