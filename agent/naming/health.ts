import { request } from "node:http";
import { connect } from "node:net";
import type { HealthCheck } from "../../src/common/types.js";

/**
 * Health checks of a task's ports (task file `ports[].check`), probed on the
 * machine itself against 127.0.0.1:<host port>.
 *
 * A task is healthy while every checked port passes its latest probe. Until a
 * port has passed once it is probed quickly (every `startupProbeMs`) so a new
 * endpoint is published as soon as it answers; those quick probes count as
 * one failure per elapsed interval, so a task that never comes up is declared
 * unhealthy after `failures × interval`, as it would with normal probing.
 * For service tasks, after `failures` consecutive failures `onUnhealthy`
 * fires once per attempt and that attempt is no longer probed (it is about to
 * be restarted); other tasks keep being probed and simply come and go.
 */

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

export function probeHttp(host: string, port: number, path: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = request({ host, port, path, method: "GET", agent: false, headers: { "user-agent": "torca-health", connection: "close" } }, (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      finish({ ok: code >= 200 && code < 400, detail: `HTTP ${code}` });
    });
    const timer = setTimeout(() => {
      finish({ ok: false, detail: `no answer within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on("error", (e) => finish({ ok: false, detail: e.message }));
    req.end();
  });
}

export function probeTcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ ok: false, detail: `no connection within ${timeoutMs} ms` });
    }, timeoutMs);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok: true, detail: "connected" });
    });
    sock.once("error", (e) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: e.message });
    });
  });
}

export interface CheckedPort {
  name: string;
  hostPort: number;
  check: HealthCheck;
}

export interface HealthTarget {
  taskId: string;
  attempt: number;
  ports: CheckedPort[];
  /** Start as passing (a task re-adopted after an agent restart that was healthy before). */
  assumePassing?: boolean;
  /** Service tasks: fire onUnhealthy after `failures` and stop probing. Others keep being probed. */
  restartOnFailure: boolean;
}

export interface HealthCheckerOptions {
  host?: string;
  startupProbeMs?: number;
  onChange: (taskId: string, attempt: number, healthy: boolean) => void;
  onUnhealthy: (taskId: string, attempt: number, detail: string) => void;
  probe?: (host: string, port: CheckedPort) => Promise<ProbeResult>;
}

interface PortState {
  port: CheckedPort;
  passing: boolean;
  everPassed: boolean;
  failures: number;
  detail: string;
  timer?: NodeJS.Timeout;
}

interface TaskHealth {
  target: HealthTarget;
  ports: PortState[];
  healthy: boolean;
  startedAt: number;
  stopped: boolean;
}

function defaultProbe(host: string, p: CheckedPort): Promise<ProbeResult> {
  return p.check.type === "http" ? probeHttp(host, p.hostPort, p.check.path ?? "/", p.check.timeoutMs) : probeTcp(host, p.hostPort, p.check.timeoutMs);
}

export class HealthChecker {
  private readonly tasks = new Map<string, TaskHealth>();
  private readonly host: string;
  private readonly startupProbeMs: number;
  private readonly probe: (host: string, port: CheckedPort) => Promise<ProbeResult>;

  constructor(private readonly o: HealthCheckerOptions) {
    this.host = o.host ?? "127.0.0.1";
    this.startupProbeMs = o.startupProbeMs ?? 250;
    this.probe = o.probe ?? defaultProbe;
  }

  /** Starts checking (idempotent per task and attempt; a new attempt replaces the old one). */
  track(target: HealthTarget): void {
    const cur = this.tasks.get(target.taskId);
    if (cur && cur.target.attempt === target.attempt) return;
    if (cur) this.untrack(target.taskId);
    const assume = target.assumePassing === true;
    const t: TaskHealth = {
      target,
      ports: target.ports.map((port) => ({ port, passing: assume, everPassed: assume, failures: 0, detail: assume ? "assumed (re-adopted)" : "not probed yet" })),
      healthy: assume && target.ports.length > 0,
      startedAt: Date.now(),
      stopped: false,
    };
    this.tasks.set(target.taskId, t);
    for (const p of t.ports) this.schedule(t, p, 0);
  }

  untrack(taskId: string): void {
    const t = this.tasks.get(taskId);
    if (!t) return;
    t.stopped = true;
    for (const p of t.ports) if (p.timer) clearTimeout(p.timer);
    this.tasks.delete(taskId);
  }

  /** undefined when the task is not checked (no checks, or not running). */
  healthy(taskId: string, attempt: number): boolean | undefined {
    const t = this.tasks.get(taskId);
    return t && t.target.attempt === attempt ? t.healthy : undefined;
  }

  status(taskId: string): { port: string; passing: boolean; failures: number; detail: string }[] {
    return (this.tasks.get(taskId)?.ports ?? []).map((p) => ({ port: p.port.name, passing: p.passing, failures: p.failures, detail: p.detail }));
  }

  private schedule(t: TaskHealth, p: PortState, delayMs: number): void {
    if (t.stopped) return;
    p.timer = setTimeout(() => void this.runProbe(t, p), delayMs);
    p.timer.unref();
  }

  private async runProbe(t: TaskHealth, p: PortState): Promise<void> {
    const r = await this.probe(this.host, p.port).catch((e: unknown) => ({ ok: false, detail: (e as Error).message }));
    if (t.stopped) return;
    const check = p.port.check;
    p.detail = r.detail;
    if (r.ok) {
      p.passing = true;
      p.everPassed = true;
      p.failures = 0;
    } else {
      p.passing = false;
      p.failures = p.everPassed ? p.failures + 1 : Math.floor((Date.now() - t.startedAt) / check.intervalMs);
    }
    const healthy = t.ports.every((x) => x.passing);
    if (healthy !== t.healthy) {
      t.healthy = healthy;
      this.o.onChange(t.target.taskId, t.target.attempt, healthy);
    }
    if (t.target.restartOnFailure && p.failures >= check.failures) {
      // Stays in the table as unhealthy (so it stays unpublished) until the task exits.
      t.stopped = true;
      for (const x of t.ports) if (x.timer) clearTimeout(x.timer);
      if (t.healthy) {
        t.healthy = false;
        this.o.onChange(t.target.taskId, t.target.attempt, false);
      }
      this.o.onUnhealthy(t.target.taskId, t.target.attempt, `port ${p.port.name}: ${p.failures} consecutive failed ${check.type} checks (last: ${r.detail})`);
      return;
    }
    this.schedule(t, p, p.everPassed ? check.intervalMs : Math.min(check.intervalMs, this.startupProbeMs));
  }

  stop(): void {
    for (const id of [...this.tasks.keys()]) this.untrack(id);
  }
}
