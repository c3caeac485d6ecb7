import { renameSync, writeFileSync } from "node:fs";
import { z } from "zod";
import { readJsonFileIfValid } from "../../src/common/json.js";
import type { Logger } from "../../src/common/logger.js";
import type { ZkSession } from "../../src/coord/zk.js";
import { namingPaths, type EndpointRecord } from "../../naming/layout.js";
import { serviceName, type ServiceName } from "../../naming/names.js";
import { deregisterEndpoint, ownedBy, registerEndpoint } from "../../naming/registration.js";
import { SerialJob } from "../../naming/watched-children.js";

/**
 * Keeps this agent's endpoint znodes equal to the wanted set (one endpoint per
 * task id), under whichever ZooKeeper session the agent currently holds.
 *
 * Level-triggered: `want` only records intent; one serialized pass creates
 * what is missing and removes what is no longer wanted. A pass also runs on a
 * new session (after expiry everything is registered again), on reconnect,
 * and every `verifyIntervalMs` to find nodes someone else removed or took over.
 *
 * What was registered is persisted with the session id, so an agent restarted
 * on its resumed session removes the nodes of tasks that ended meanwhile.
 */

export interface WantedEndpoint {
  name: ServiceName;
  record: EndpointRecord;
}

interface Registered {
  zk: ZkSession;
  name: ServiceName;
  record: EndpointRecord;
}

/** The registrations file: the session they were made on and the endpoints it holds. */
const PersistedStateSchema = z.object({
  sessionId: z.string(),
  endpoints: z.array(z.object({ namespace: z.string(), service: z.string(), task: z.string() })),
});
type PersistedState = z.infer<typeof PersistedStateSchema>;

const DEFAULTS = Object.freeze({ verifyIntervalMs: 5000 });

export interface RegistrarOptions {
  root: string;
  /** File remembering this agent's registrations across restarts. */
  stateFile: string;
  log: Logger;
  verifyIntervalMs?: number;
}

export class NamingRegistrar {
  private zk?: ZkSession;
  private readonly wanted = new Map<string, WantedEndpoint>();
  /** Removal reason per task: a stopped task's emptied service node is pruned, an unhealthy one's is kept. */
  private readonly pruneOnRemove = new Map<string, boolean>();
  private readonly registered = new Map<string, Registered>();
  /** The service each task was last wanted under, so a task that ends unpublished (e.g. unhealthy) still prunes its emptied service node. */
  private readonly lastName = new Map<string, ServiceName>();
  private readonly prune = new Map<string, ServiceName>();
  private readonly pass = new SerialJob(() => this.reconcile());
  private verifyTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private inherited: PersistedState["endpoints"] = [];
  private stopped = false;

  private readonly verifyIntervalMs: number;

  constructor(private readonly o: RegistrarOptions) {
    this.verifyIntervalMs = o.verifyIntervalMs ?? DEFAULTS.verifyIntervalMs;
  }

  /** Wants an endpoint for the task, or none (`stopped`: the task ended, not just unhealthy). */
  want(taskId: string, ep: WantedEndpoint | undefined, opts: { stopped?: boolean } = {}): void {
    if (ep) {
      this.wanted.set(taskId, ep);
      this.lastName.set(taskId, ep.name);
      this.pruneOnRemove.delete(taskId);
      this.prune.delete(taskId);
    } else {
      const name = this.lastName.get(taskId);
      if (opts.stopped && name) {
        this.lastName.delete(taskId);
        if (!this.registered.has(taskId)) this.prune.set(taskId, name);
      }
      if (!this.wanted.has(taskId) && !this.registered.has(taskId) && !this.prune.has(taskId)) return;
      this.wanted.delete(taskId);
      this.pruneOnRemove.set(taskId, Boolean(opts.stopped));
    }
    this.kick();
  }

  /** Task ids this agent registered under the given session before it restarted. */
  inheritedTasks(sessionId: string): string[] {
    const s = this.readState();
    return s && s.sessionId === sessionId ? s.endpoints.map((e) => e.task) : [];
  }

  /** Adopts the agent's (new or resumed) session and registers everything wanted under it. */
  attach(zk: ZkSession): void {
    this.zk = zk;
    for (const [id, r] of this.registered) if (r.zk !== zk) this.registered.delete(id);
    const s = this.readState();
    this.inherited = s && s.sessionId === zk.sessionId ? s.endpoints : [];
    zk.on("reconnected", () => {
      if (this.zk === zk) this.kick();
    });
    if (!this.verifyTimer) {
      this.verifyTimer = setInterval(() => void this.verify(), this.verifyIntervalMs);
      this.verifyTimer.unref();
    }
    this.kick();
  }

  /** Runs a pass now; resolves when it (and any pass asked for meanwhile) is done. */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const p = this.pass.run().catch((e: unknown) => {
      this.o.log.warn({ err: e }, "naming registration pass failed; retrying");
      if (!this.retryTimer && !this.stopped) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          void this.kick();
        }, 1000);
        this.retryTimer.unref();
      }
    });
    return p;
  }

  private async reconcile(): Promise<void> {
    const zk = this.zk;
    if (!zk || !zk.isAlive || this.stopped) return;
    // Nodes the previous process registered under this (resumed) session but nobody wants now.
    for (const e of this.inherited.splice(0)) {
      if (this.wanted.has(e.task) || this.registered.has(e.task)) continue;
      await deregisterEndpoint(zk, this.o.root, serviceName(e.namespace, e.service), e.task, { pruneService: true });
    }
    for (const [taskId, r] of [...this.registered]) {
      const w = this.wanted.get(taskId);
      if (w && w.name.key === r.name.key && w.record.attempt === r.record.attempt) continue;
      if (r.zk === zk) await deregisterEndpoint(zk, this.o.root, r.name, taskId, { pruneService: !w && this.pruneOnRemove.get(taskId) === true });
      this.registered.delete(taskId);
      this.o.log.info({ task: taskId, name: r.name.key }, "endpoint deregistered");
    }
    for (const [taskId, w] of this.wanted) {
      if (this.registered.has(taskId)) continue;
      const outcome = await registerEndpoint(zk, this.o.root, w.name, w.record);
      if (outcome === "yielded") {
        this.o.log.warn({ task: taskId, name: w.name.key }, "endpoint node held by a newer attempt elsewhere; not registering");
        continue;
      }
      this.registered.set(taskId, { zk, name: w.name, record: w.record });
      this.o.log.info({ task: taskId, name: w.name.key, port: w.record.port, outcome }, "endpoint registered");
    }
    for (const [taskId, name] of [...this.prune]) {
      this.prune.delete(taskId);
      if (!this.wanted.has(taskId)) await deregisterEndpoint(zk, this.o.root, name, taskId, { pruneService: true });
    }
    for (const id of [...this.pruneOnRemove.keys()]) if (!this.registered.has(id)) this.pruneOnRemove.delete(id);
    this.persist(zk);
  }

  /** Finds registrations that vanished (removed by hand, taken over) and lets the next pass redo them. */
  private async verify(): Promise<void> {
    const zk = this.zk;
    if (!zk?.isConnected || this.stopped) return;
    const paths = namingPaths(this.o.root);
    let lost = false;
    for (const [taskId, r] of [...this.registered]) {
      if (r.zk !== zk) continue;
      const stat = await zk.exists(paths.endpoint(r.name, taskId)).catch(() => null);
      if (stat === null) return; // connection trouble: the reconnect pass covers it
      if (!stat || !ownedBy(stat.ephemeralOwner, zk.sessionId)) {
        this.registered.delete(taskId);
        lost = true;
      }
    }
    const yielded = [...this.wanted.keys()].some((id) => !this.registered.has(id));
    if (lost || yielded) await this.kick();
  }

  private readState(): PersistedState | undefined {
    return readJsonFileIfValid(PersistedStateSchema, this.o.stateFile, (e) => this.o.log.warn({ err: e }, "ignoring unreadable naming registrations"));
  }

  private persist(zk: ZkSession): void {
    const state: PersistedState = {
      sessionId: zk.sessionId,
      endpoints: [...this.registered].filter(([, r]) => r.zk === zk).map(([task, r]) => ({ namespace: r.name.namespace, service: r.name.service, task })),
    };
    try {
      writeFileSync(this.o.stateFile + ".tmp", JSON.stringify(state));
      renameSync(this.o.stateFile + ".tmp", this.o.stateFile);
    } catch (e) {
      this.o.log.warn({ err: e }, "cannot persist naming registrations");
    }
  }

  /** Stops; with `deregister` removes this agent's endpoints now instead of leaving them to the session. */
  async stop(opts: { deregister?: boolean } = {}): Promise<void> {
    if (opts.deregister) {
      this.wanted.clear();
      for (const id of this.registered.keys()) this.pruneOnRemove.set(id, true);
      await this.pass.run().catch(() => undefined);
    }
    this.stopped = true;
    if (this.verifyTimer) clearInterval(this.verifyTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }
}
