import { join } from "node:path";
import type { Logger } from "../../src/common/logger.js";
import type { ZkSession } from "../../src/coord/zk.js";
import { serviceName } from "../../naming/names.js";
import type { TaskRecord } from "../tasks/runner.js";
import { HealthChecker, type CheckedPort } from "./health.js";
import { NamingRegistrar, type WantedEndpoint } from "./registrar.js";

/**
 * The agent's naming side: follows the task runner, health-checks the ports
 * of running service tasks, and publishes an endpoint for each one that runs
 * and passes its checks (tasks without checks: once running).
 */

/** The part of the TaskRunner naming needs. */
export interface TaskSource {
  all(): TaskRecord[];
  get(taskId: string): TaskRecord | undefined;
  on(event: "change", fn: (r: TaskRecord) => void): unknown;
  off(event: "change", fn: (r: TaskRecord) => void): unknown;
}

export interface AgentNamingOptions {
  tasks: TaskSource;
  root: string;
  nodeId: string;
  /** The address other machines reach this agent's tasks on (TORCA_HOST). */
  host: string;
  dataDir: string;
  log: Logger;
  /** A service task failed its checks `failures` times in a row: stop it so the manager restarts it. */
  onUnhealthy: (taskId: string, attempt: number, detail: string) => void;
  /** Health of a task changed (to report it). */
  onHealthChange?: (taskId: string, attempt: number, healthy: boolean) => void;
  verifyIntervalMs?: number;
}

export class AgentNaming {
  private readonly health: HealthChecker;
  private readonly registrar: NamingRegistrar;
  private readonly onChange = (r: TaskRecord) => this.update(r);
  /** Tasks being drained before a stop: kept out of naming while they still run. */
  private readonly draining = new Set<string>();
  private started = false;

  constructor(private readonly o: AgentNamingOptions) {
    this.health = new HealthChecker({
      onChange: (taskId, attempt, healthy) => {
        const r = o.tasks.get(taskId);
        if (r && r.dispatch.attempt === attempt) this.update(r);
        o.onHealthChange?.(taskId, attempt, healthy);
      },
      onUnhealthy: (taskId, attempt, detail) => {
        o.log.warn({ task: taskId, attempt, detail }, "task failed its health checks; stopping it for a restart");
        o.onUnhealthy(taskId, attempt, detail);
      },
    });
    this.registrar = new NamingRegistrar({
      root: o.root,
      stateFile: join(o.dataDir, "naming-registrations.json"),
      log: o.log,
      ...(o.verifyIntervalMs !== undefined ? { verifyIntervalMs: o.verifyIntervalMs } : {}),
    });
  }

  /** Adopts the agent's current session (call again with the new one after an expiry). */
  attach(zk: ZkSession): void {
    if (!this.started) {
      this.started = true;
      // Tasks re-adopted after an agent restart on a resumed session were published and healthy: keep them so while re-probing.
      const inherited = new Set(this.registrar.inheritedTasks(zk.sessionId));
      this.o.tasks.on("change", this.onChange);
      for (const r of this.o.tasks.all()) this.update(r, inherited.has(r.dispatch.taskId));
    }
    this.registrar.attach(zk);
  }

  /** For the agent's task report: undefined for tasks without checks. */
  healthy(taskId: string, attempt: number): boolean | undefined {
    return this.health.healthy(taskId, attempt);
  }

  /**
   * Takes the task's endpoint out of naming ahead of its stop; resolves once
   * the endpoint's znode is gone (resolvers then drop it within their
   * propagation time, tens of milliseconds).
   */
  async unpublish(taskId: string): Promise<void> {
    this.draining.add(taskId);
    this.registrar.want(taskId, undefined);
    await this.registrar.kick();
  }

  private update(r: TaskRecord, assumePassing = false): void {
    const d = r.dispatch;
    const spec = d.spec;
    if (!spec.service || spec.ports.length === 0) return;
    if (r.state === "exited") this.draining.delete(d.taskId);
    if (r.state !== "running" || !r.ports[spec.ports[0]!.name] || this.draining.has(d.taskId)) {
      this.health.untrack(d.taskId);
      this.registrar.want(d.taskId, undefined, { stopped: r.state === "exited" });
      return;
    }
    const checked: CheckedPort[] = spec.ports.flatMap((p) => (p.check && r.ports[p.name] ? [{ name: p.name, hostPort: r.ports[p.name]!, check: p.check }] : []));
    let healthy = true;
    if (checked.length) {
      this.health.track({ taskId: d.taskId, attempt: d.attempt, ports: checked, assumePassing, restartOnFailure: spec.type === "service" });
      healthy = this.health.healthy(d.taskId, d.attempt) === true;
    }
    this.registrar.want(d.taskId, healthy ? this.endpointOf(r) : undefined);
  }

  private endpointOf(r: TaskRecord): WantedEndpoint {
    const d = r.dispatch;
    return {
      name: serviceName(d.spec.namespace, d.spec.service!.name),
      record: {
        host: this.o.host,
        port: r.ports[d.spec.ports[0]!.name]!,
        ports: { ...r.ports },
        task: d.taskId,
        node: this.o.nodeId,
        job: d.jobId,
        attempt: d.attempt,
        registeredAt: Date.now(),
      },
    };
  }

  /** Stops checking; `deregister` removes the endpoints now (clean shutdown that also stops the tasks). */
  async stop(opts: { deregister?: boolean } = {}): Promise<void> {
    this.o.tasks.off("change", this.onChange);
    this.health.stop();
    await this.registrar.stop(opts);
  }
}
