import { request } from "node:http";
import type { Resolver } from "../../naming/resolver.js";

/**
 * A client of a named service that never pauses: each of `workers` loops
 * resolves the name through the resolver library (round robin over its
 * watched copy), sends one GET on a new connection and counts the outcome.
 * Every failure counts: refused, reset, a 5xx, a timeout, or no endpoint.
 */
export interface LoadReport {
  ok: number;
  failed: number;
  /** Failures by kind (ECONNREFUSED, ECONNRESET, http-503, timeout, no-endpoint, …) with one example each. */
  failures: Record<string, { count: number; example: string }>;
  /** Answers by body (what the service echoes, e.g. its version). */
  bodies: Record<string, number>;
}

export class LoadGenerator {
  private running = false;
  private loops: Promise<void>[] = [];
  readonly report: LoadReport = { ok: 0, failed: 0, failures: {}, bodies: {} };

  constructor(
    private readonly resolver: Resolver,
    private readonly name: string,
    private readonly opts: { workers?: number; timeoutMs?: number } = {},
  ) {}

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.opts.workers ?? 2 }, () => this.loop());
  }

  async stop(): Promise<LoadReport> {
    this.running = false;
    await Promise.all(this.loops);
    return this.report;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const ep = await this.resolver.pick(this.name, "round-robin");
      if (!ep) {
        this.fail("no-endpoint", `no endpoint for ${this.name}`);
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      await this.one(ep.host, ep.port);
    }
  }

  private one(host: string, port: number): Promise<void> {
    const timeoutMs = this.opts.timeoutMs ?? 3000;
    return new Promise((resolve) => {
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        f();
        resolve();
      };
      const req = request({ host, port, path: "/", agent: false, headers: { connection: "close" } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () =>
          finish(() => {
            if ((res.statusCode ?? 0) >= 500) this.fail(`http-${res.statusCode}`, `${host}:${port} answered ${res.statusCode}`);
            else {
              this.report.ok++;
              this.report.bodies[body] = (this.report.bodies[body] ?? 0) + 1;
            }
          }),
        );
        res.on("error", (e: NodeJS.ErrnoException) => finish(() => this.fail(e.code ?? "response-error", `${host}:${port}: ${e.message}`)));
      });
      const timer = setTimeout(() => {
        finish(() => this.fail("timeout", `${host}:${port}: no answer within ${timeoutMs} ms`));
        req.destroy();
      }, timeoutMs);
      req.on("error", (e: NodeJS.ErrnoException) => finish(() => this.fail(e.code ?? "request-error", `${host}:${port}: ${e.message}`)));
      req.end();
    });
  }

  private fail(kind: string, example: string): void {
    this.report.failed++;
    const f = (this.report.failures[kind] ??= { count: 0, example });
    f.count++;
  }
}
