import type { Got } from "got";
import { z } from "zod";
import { formatBytes } from "../../../common/units.js";
import type { Job, NodeInfo, TaskInstance } from "../../../common/types.js";
import { lineChart } from "../../../http/pages/chart.js";
import { esc, fmtCpu, seg } from "../../../http/pages/html.js";

/**
 * Usage over time on the task and node pages, from the agents' histories
 * (`GET /v1/tasks/:id/usage` and `GET /v1/usage` on the agent, one sample per
 * report interval over the last half hour). Each chart is served alone as SVG
 * too (`/charts/...`), and the client script re-fetches it every interval.
 */

const HISTORY_TIMEOUT_MS = 1500;
/** When the agent cannot say its interval: the default report interval. */
const DEFAULT_REFRESH_MS = 5000;

const HistorySchema = z.object({
  intervalMs: z.number().int().positive(),
  samples: z.array(z.object({ at: z.number(), cpu: z.number(), memory: z.number() })),
});
export type UsageHistory = z.infer<typeof HistorySchema>;

export type Metric = "cpu" | "memory";
export const METRICS: readonly Metric[] = ["cpu", "memory"];

async function fetchHistory(http: Got, node: NodeInfo | undefined, path: string): Promise<UsageHistory | string> {
  if (!node || node.state === "lost") return "the node is not reachable";
  try {
    const body = await http.get(`${node.url}${path}`, { timeout: { request: HISTORY_TIMEOUT_MS }, retry: { limit: 0 } }).json<unknown>();
    const parsed = HistorySchema.safeParse(body);
    return parsed.success ? parsed.data : `agent ${node.id} answered without a usage history`;
  } catch (e) {
    return `agent ${node.id} did not answer (${(e as Error).message})`;
  }
}

/** The task's history from its agent, or why there is none. */
export function fetchTaskHistory(http: Got, node: NodeInfo | undefined, t: TaskInstance): Promise<UsageHistory | string> {
  if (!t.nodeId) return Promise.resolve(`the task is ${t.state} and on no node`);
  return fetchHistory(http, node, `/v1/tasks/${encodeURIComponent(t.id)}/usage`);
}

export function fetchNodeHistory(http: Got, node: NodeInfo): Promise<UsageHistory | string> {
  return fetchHistory(http, node, "/v1/usage");
}

const fmtCores = (v: number) => fmtCpu(v);

function chart(id: string, metric: Metric, h: UsageHistory | string, limit: { label: string; cpu: number; memory: number }, what: string): string {
  const points = typeof h === "string" ? [] : h.samples.map((s) => ({ at: s.at, value: metric === "cpu" ? s.cpu : s.memory }));
  return lineChart({
    id,
    title: metric === "cpu" ? `CPU (cores) of ${what}` : `Memory of ${what}`,
    points,
    limit: { label: limit.label, value: limit[metric] },
    format: metric === "cpu" ? fmtCores : formatBytes,
    empty: typeof h === "string" ? `no history: ${h}` : "no samples yet (one per report interval)",
  });
}

export function taskChart(job: Job, t: TaskInstance, h: UsageHistory | string, metric: Metric): string {
  return chart(`chart-task-${metric}`, metric, h, { label: "request", ...job.spec.resources }, `task ${t.id}`);
}

export function nodeChart(n: NodeInfo, h: UsageHistory | string, metric: Metric): string {
  return chart(`chart-node-${metric}`, metric, h, { label: "capacity", ...n.capacity }, `node ${n.id}`);
}

export function taskChartsPath(t: Pick<TaskInstance, "jobId" | "index">, metric: Metric): string {
  return `/charts/tasks/${seg(t.jobId)}/${t.index}/${metric}`;
}

export function nodeChartsPath(n: Pick<NodeInfo, "id">, metric: Metric): string {
  return `/charts/nodes/${seg(n.id)}/${metric}`;
}

/** The charts' section: each chart in a box the client script refreshes from its own URL every report interval. */
export function chartsSection(h: UsageHistory | string, charts: { path: string; svg: string }[], limitName: string): string {
  const refresh = typeof h === "string" ? DEFAULT_REFRESH_MS : h.intervalMs;
  return `<div class="charts" id="usage-charts" data-refresh-ms="${esc(refresh)}">${charts.map((c) => `<div class="chart-box" data-chart-src="${esc(c.path)}">${c.svg}</div>`).join("")}<p class="muted">The last 30 minutes as the agent sampled it, one point per report interval; the dashed line is the ${esc(limitName)}.</p></div>`;
}
