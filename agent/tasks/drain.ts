import type { Logger } from "../../src/common/logger.js";
import type { TaskRunner } from "./runner.js";

/** The part of the agent's naming a drain needs. */
export interface Unpublisher {
  unpublish(taskId: string): Promise<void>;
}

/**
 * Stops with a drain: the task's endpoint leaves naming first, the task keeps
 * serving the requests already routed to it for `drainMs`, then it is stopped
 * with its grace. A repeated stop of an attempt already draining changes
 * nothing (the primary re-sends stops until they take effect).
 */
export class DrainingStops {
  private readonly draining = new Set<string>();

  constructor(
    private readonly runner: Pick<TaskRunner, "get" | "stop">,
    private readonly naming: () => Unpublisher | undefined,
    private readonly log: Logger,
  ) {}

  /** False when the task (or that attempt) is not here. */
  async stop(taskId: string, attempt: number | undefined, graceMs: number, drainMs: number): Promise<boolean> {
    const r = this.runner.get(taskId);
    if (!r || (attempt !== undefined && r.dispatch.attempt !== attempt)) return false;
    const naming = this.naming();
    if (drainMs <= 0 || r.state !== "running" || !naming || !r.dispatch.spec.service) return this.runner.stop(taskId, attempt, graceMs);
    const key = `${taskId}#${r.dispatch.attempt}`;
    if (this.draining.has(key)) return true;
    this.draining.add(key);
    const at = r.dispatch.attempt;
    void (async () => {
      try {
        await naming.unpublish(taskId);
        this.log.info({ task: taskId, attempt: at, drainMs }, "unpublished; draining before the stop");
        await new Promise((resolve) => setTimeout(resolve, drainMs));
        await this.runner.stop(taskId, at, graceMs);
      } catch (e) {
        this.log.warn({ task: taskId, err: e }, "drain failed; stopping now");
        await this.runner.stop(taskId, at, graceMs).catch(() => false);
      } finally {
        this.draining.delete(key);
      }
    })();
    return true;
  }
}
