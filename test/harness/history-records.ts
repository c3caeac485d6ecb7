import type { ArchiveRecord, ArchivedTask, FinishedStatus } from "../../src/history/record.js";
import type { JobSpec } from "../../src/common/types.js";
import { jobIdOf, taskIdOf } from "../../src/common/types.js";

/**
 * Archive records for history tests: a job generation with the given runs,
 * each of `tasks` instances spread over `nodes`, with usage figures derived
 * from the task index so totals are predictable.
 */

export interface RunShape {
  run: number;
  status: FinishedStatus;
  finishedAt: number;
  version?: number;
}

export interface RecordShape {
  name: string;
  namespace?: string;
  generation: number;
  runs: RunShape[];
  tasks?: number;
  nodes?: string[];
  versions?: number;
}

export function specOf(name: string, namespace: string, schedule?: string): JobSpec {
  return {
    name,
    namespace,
    type: "batch",
    priority: 100,
    instances: 1,
    command: ["/bin/true"],
    env: {},
    resources: { cpu: 0.5, memory: 64 * 2 ** 20, disk: 0 },
    constraints: [],
    ports: [],
    restart: { attempts: 1, delayMs: 1000, backoff: 2, maxDelayMs: 60_000 },
    ...(schedule ? { schedule } : {}),
    placement: { strategy: "binpack" },
  };
}

/** cpu = index + 1 s, memory·s = (index + 1) MiB·s, peak = (index + 1) MiB, wall = 2 × (index + 1) s. */
export function usageOf(index: number): ArchivedTask["usage"] {
  return { cpuSeconds: index + 1, memoryByteSeconds: (index + 1) * 2 ** 20, peakMemoryBytes: (index + 1) * 2 ** 20, wallSeconds: 2 * (index + 1) };
}

export function recordOf(s: RecordShape): ArchiveRecord {
  const namespace = s.namespace ?? "default";
  const jobId = jobIdOf(namespace, s.name);
  const nodes = s.nodes ?? ["node-a", "node-b"];
  const versionCount = s.versions ?? 1;
  return {
    jobId,
    generation: s.generation,
    namespace,
    name: s.name,
    type: "batch",
    submittedAt: s.generation,
    versions: Array.from({ length: versionCount }, (_, i) => ({
      version: i + 1,
      submittedAt: s.generation + i * 1000,
      spec: specOf(s.name, namespace),
      source: `name: ${s.name}\ncommand: ["/bin/true"]\n# version ${i + 1}\n`,
    })),
    runs: s.runs.map((r) => ({ run: r.run, version: r.version ?? versionCount, status: r.status, startedAt: r.finishedAt - 60_000, finishedAt: r.finishedAt })),
    tasks: s.runs.flatMap((r) =>
      Array.from({ length: s.tasks ?? 2 }, (_, index): ArchivedTask => {
        const failed = r.status === "failed" && index === 0;
        const node = nodes[index % nodes.length]!;
        return {
          id: taskIdOf(jobId, index),
          index,
          run: r.run,
          version: r.version ?? versionCount,
          state: failed ? "failed" : "completed",
          attempts: failed ? 2 : 1,
          nodes: failed ? [nodes[(index + 1) % nodes.length]!, node] : [node],
          exit: failed ? { exitCode: 3, signal: null, oomKilled: false, reason: "exit 3" } : { exitCode: 0, signal: null, oomKilled: false, reason: "exit 0" },
          ...(failed ? { reason: "exit 3 after 2 attempts" } : {}),
          createdAt: r.finishedAt - 61_000,
          startedAt: r.finishedAt - 60_000,
          finishedAt: r.finishedAt,
          events: [
            { at: r.finishedAt - 61_000, type: "created", message: "created" },
            { at: r.finishedAt, type: failed ? "failed" : "completed", message: failed ? "exit 3" : "exit 0" },
          ],
          usage: usageOf(index),
        };
      }),
    ),
  };
}
