import { TERMINAL_TASK_STATES, type Job, type TaskInstance } from "../../common/types.js";
import { isHealthyFor, versionOf } from "./machine.js";
import { hasHealthChecks, updatePolicyOf } from "./rollouts.js";

export interface VersionCounts {
  version: number;
  instances: number;
  healthy: number;
  unhealthy: number;
  canaries: number;
  stopping: number;
}

/** Instances per version: how many, how many healthy for the deployment, how many canaries. */
export function deploymentView(job: Job, tasks: readonly TaskInstance[], now: number) {
  const policy = updatePolicyOf(job.spec);
  const checks = hasHealthChecks(job.spec);
  const byVersion = new Map<number, VersionCounts>();
  for (const t of tasks) {
    if (TERMINAL_TASK_STATES.has(t.state)) continue;
    const v = versionOf(t);
    const row = byVersion.get(v) ?? { version: v, instances: 0, healthy: 0, unhealthy: 0, canaries: 0, stopping: 0 };
    byVersion.set(v, row);
    if (t.desired === "stop") {
      row.stopping++;
      continue;
    }
    row.instances++;
    if (isHealthyFor(t, checks, policy.minHealthyTimeMs, now)) row.healthy++;
    else if (t.healthy === false) row.unhealthy++;
    if (t.canary && job.deployment && !job.deployment.promoted && v === job.deployment.version) row.canaries++;
  }
  return { job: job.id, version: job.version ?? 0, deployment: job.deployment ?? null, update: policy, versions: [...byVersion.values()].sort((a, b) => b.version - a.version) };
}

