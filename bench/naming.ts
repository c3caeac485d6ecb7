import { mkdtemp, rm } from "node:fs/promises";
import { createServer, Agent, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Koa from "koa";
import { startZooKeeper } from "../src/cell/zookeeper-server.js";
import { TokenTable } from "../src/common/auth.js";
import { createLogger } from "../src/common/logger.js";
import { ZkSession } from "../src/coord/zk.js";
import { errorEnvelope } from "../src/http/edge.js";
import { namesRouter } from "../src/manager/http/names.js";
import { parseServiceName } from "../naming/names.js";
import { deregisterEndpoint, registerEndpoint } from "../naming/registration.js";
import { createResolver } from "../naming/resolver.js";

/**
 * Naming figures on a real ZooKeeper (loopback, tickTime 1000):
 *  - propagation: an endpoint registered on one session → the resolver's
 *    `change` event on another (the path a new task takes to clients), and
 *    the same for a deregistration (the path of a task that exits);
 *  - HTTP lookups/s: GET /v1/names/:name served by the manager's names routes
 *    (same router, auth and error middleware) from the watched cache, with 50
 *    concurrent keep-alive connections for 5 s.
 */

const ROOT = "/bench-naming";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function httpLoad(url: string, token: string, connections: number, durationMs: number): Promise<{ requests: number; errors: number; elapsedMs: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const u = new URL(url);
  let requests = 0;
  let errors = 0;
  const t0 = Date.now();
  const end = t0 + durationMs;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) requests += 1;
          else errors += 1;
          resolve();
        });
      });
      req.on("error", () => {
        errors += 1;
        resolve();
      });
      req.end();
    });
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) await one();
    }),
  );
  agent.destroy();
  return { requests, errors, elapsedMs: Date.now() - t0 };
}

export async function benchNaming(samples = 250): Promise<Record<string, number | string>> {
  const dir = await mkdtemp(join(tmpdir(), "torca-bench-naming-"));
  const zk = await startZooKeeper({ dataDir: join(dir, "zk"), tickTimeMs: 1000 });
  const reg = await ZkSession.connect({ connect: zk.connectString, sessionTimeoutMs: 4000 });
  const resolver = await createResolver({ zookeeper: zk.connectString, root: ROOT, sessionTimeoutMs: 4000 });
  const server = createServer();
  try {
    const name = parseServiceName("bench.web");
    await resolver.resolve(name.key);
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      const seen = new Promise<void>((resolve) => {
        const on = (n: string, eps: unknown[]) => {
          if (n === name.key && eps.length === i + 1) {
            resolver.off("change", on);
            resolve();
          }
        };
        resolver.on("change", on);
      });
      const t0 = process.hrtime.bigint();
      await registerEndpoint(reg, ROOT, name, { host: "127.0.0.1", port: 20000 + (i % 40000), ports: { http: 20000 + (i % 40000) }, task: `bench/${i}`, node: "bench", job: "bench", attempt: 1, registeredAt: Date.now() });
      await seen;
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    latencies.sort((a, b) => a - b);

    // The way out: an endpoint deregistered (a task exited) → the resolver's `change` without it.
    const leaving: number[] = [];
    for (let i = samples - 1; i >= 0; i--) {
      const seen = new Promise<void>((resolve) => {
        const on = (n: string, eps: unknown[]) => {
          if (n === name.key && eps.length === i) {
            resolver.off("change", on);
            resolve();
          }
        };
        resolver.on("change", on);
      });
      const t0 = process.hrtime.bigint();
      await deregisterEndpoint(reg, ROOT, name, `bench/${i}`);
      await seen;
      leaving.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    leaving.sort((a, b) => a - b);

    // A smaller name for the HTTP figure, like a typical service.
    const small = parseServiceName("bench.api");
    for (let i = 0; i < 3; i++) await registerEndpoint(reg, ROOT, small, { host: "127.0.0.1", port: 21000 + i, ports: { http: 21000 + i }, task: `api/${i}`, node: "bench", job: "api", attempt: 1, registeredAt: Date.now() });
    await resolver.waitFor(small.key, (e) => e.length === 3, 5000);
    const token = "bench-token";
    const app = new Koa();
    app.use(errorEnvelope(createLogger("bench")));
    const names = namesRouter(resolver, new TokenTable(token));
    app.use(names.routes());
    server.on("request", app.callback());
    server.keepAliveTimeout = 10_000;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as AddressInfo).port;
    const load = await httpLoad(`http://127.0.0.1:${port}/v1/names/${small.key}`, token, 50, 5000);
    return {
      "naming propagation samples": samples,
      "naming propagation p50 ms": Number(percentile(latencies, 50).toFixed(2)),
      "naming propagation p99 ms": Number(percentile(latencies, 99).toFixed(2)),
      "naming propagation max ms": Number(latencies[latencies.length - 1]!.toFixed(2)),
      "naming deregistration propagation p50 ms": Number(percentile(leaving, 50).toFixed(2)),
      "naming deregistration propagation p99 ms": Number(percentile(leaving, 99).toFixed(2)),
      "naming http resolve req/s (50 conns, 3 endpoints)": Math.round((load.requests / load.elapsedMs) * 1000),
      "naming http resolve errors": load.errors,
    };
  } finally {
    server.close();
    resolver.close();
    reg.close();
    await zk.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchNaming();
  for (const [k, v] of Object.entries(r)) process.stdout.write(`${k}: ${v}\n`);
}
