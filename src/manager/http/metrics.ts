import { namespaceOfJobId, seesNamespace, type Caller } from "../../auth/grants.js";
import type { ManagerView } from "./api.js";

/**
 * Prometheus text exposition of the manager's view of the cell; job and task counts cover the caller's namespaces only.
 * The process, runtime and activity families follow it, from the manager's registry (src/metrics/manager.ts).
 */
export function renderMetrics(v: ManagerView, caller: Caller): string {
  const lines: string[] = [];
  const gauge = (name: string, help: string, samples: [Record<string, string>, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, val]) => `${k}="${val.replace(/["\\\n]/g, "_")}"`).join(",");
      lines.push(`${name}${l ? `{${l}}` : ""} ${value}`);
    }
  };
  const store = v.store();
  const nodes = v.collector()?.nodes() ?? [];
  gauge("torca_manager_is_primary", "1 when this manager is the primary", [[{ manager: v.id }, v.primary()?.isActive ? 1 : 0]]);
  gauge("torca_epoch", "current primary epoch", [[{}, v.leader()?.epoch ?? 0]]);
  const byState = new Map<string, number>();
  for (const n of nodes) byState.set(n.state, (byState.get(n.state) ?? 0) + 1);
  gauge("torca_nodes", "nodes by state", [...byState].map(([s, c]) => [{ state: s }, c]));
  // Emitted with no samples while the manager is still joining: every manager serves the same families.
  const jobStates = new Map<string, number>();
  for (const j of store?.jobs.values() ?? []) if (seesNamespace(caller, j.spec.namespace)) jobStates.set(j.status, (jobStates.get(j.status) ?? 0) + 1);
  gauge("torca_jobs", "jobs by status", [...jobStates].map(([s, c]) => [{ status: s }, c]));
  const taskStates = new Map<string, number>();
  for (const t of store?.allTasks() ?? []) if (seesNamespace(caller, namespaceOfJobId(t.jobId))) taskStates.set(t.state, (taskStates.get(t.state) ?? 0) + 1);
  gauge("torca_tasks", "task instances by state", [...taskStates].map(([s, c]) => [{ state: s }, c]));
  gauge("torca_node_allocatable_cpu_cores", "allocatable cpu per node", nodes.map((n) => [{ node: n.id }, n.allocatable.cpu]));
  gauge("torca_node_allocatable_memory_bytes", "allocatable memory per node", nodes.map((n) => [{ node: n.id }, n.allocatable.memory]));
  return lines.join("\n") + "\n";
}
