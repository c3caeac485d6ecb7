import { createResolver } from "../naming/resolver.js";
import type { Deployment } from "../src/common/types.js";
import { LoadGenerator } from "../test/harness/load.js";
import { ROLLING_SERVICE, rollingJob } from "../test/harness/rolling-service.js";
import { until } from "../test/harness/wait.js";
import { nowMs, round, startBenchCell } from "./cell-common.js";

/**
 * P9: a rolling update of a 4-instance HTTP service behind naming, on a local
 * cell (one agent, tasks as processes), under a client that resolves the name
 * through the resolver library and sends requests without pause (2 workers,
 * a new connection each). One sample: from the submission of v1 (a changed
 * environment value) until the deployment is successful, with the update
 * block's defaults except minHealthyTime 1s (maxParallel 1, maxSurge 0,
 * drainDelay 2s), then the same with maxSurge 1. Every failed request counts
 * (refused, reset, 5xx, timeout, no endpoint).
 */
export async function benchRollout(): Promise<Record<string, number | string>> {
  const c = await startBenchCell({ agentDriver: "process", managers: 1 });
  const resolver = await createResolver({ zookeeper: c.cell.zookeeper!.connectString, sessionTimeoutMs: 4000 });
  try {
    const url = await c.primaryUrl();
    const submit = (body: string) => c.api.post(`${url}/v1/jobs`, { body, headers: { "content-type": "application/json" } }).json<{ version: number }>();
    const successful = (version: number) =>
      until(`version ${version} rolled out`, async () => {
        const d = await c.api.get(`${url}/v1/jobs/web/deployment`).json<{ deployment: Deployment | null }>();
        return d.deployment?.version === version && d.deployment.status === "successful";
      }, { timeoutMs: 180_000, intervalMs: 100 });
    await submit(rollingJob("v0"));
    await until("four endpoints", async () => (await resolver.resolve(ROLLING_SERVICE)).length === 4, { timeoutMs: 60_000 });

    const out: Record<string, number | string> = { instances: 4, "load workers": 2 };
    const rollouts: [string, string, Record<string, unknown>][] = [
      ["maxSurge 0", "v1", {}],
      ["maxSurge 1", "v2", { maxSurge: 1 }],
    ];
    for (const [label, version, update] of rollouts) {
      const load = new LoadGenerator(resolver, ROLLING_SERVICE, { workers: 2 });
      load.start();
      const t0 = nowMs();
      const { version: n } = await submit(rollingJob(version, { update }));
      await successful(n);
      const seconds = (nowMs() - t0) / 1000;
      const r = await load.stop();
      out[`rollout time 4 instances, ${label} (s)`] = round(seconds, 1);
      out[`failed requests, ${label}`] = r.failed;
      out[`requests answered, ${label}`] = r.ok;
      if (r.failed) out[`failures, ${label}`] = JSON.stringify(r.failures);
    }
    return out;
  } finally {
    resolver.close();
    await c.close();
  }
}
