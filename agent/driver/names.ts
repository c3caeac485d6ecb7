/**
 * Names derived from task ids. Task ids contain `/` (job/index) and possibly `:`
 * (namespace:job), which neither LXC container names, cgroup dir names nor
 * hostnames accept, so they are sanitized; a short hash of the raw id keeps two
 * ids that sanitize alike ("a/b", "a_b") apart.
 */
import { createHash } from "node:crypto";

function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 8);
}

/**
 * Unique per (task, attempt); safe as an LXC container name and a cgroup dir
 * name. Cgroup names are host-wide, so the process driver passes the task dir
 * as `scope`: two agents (or two cells) on one host never share a cgroup. (LXC
 * refuses a clashing container name itself, and says so in the task's exit.)
 */
export function instanceName(taskId: string, attempt: number, scope?: string): string {
  const safe = taskId.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 48);
  return `t-${safe}-${shortHash(scope === undefined ? taskId : `${scope}\0${taskId}`)}-${attempt}`;
}

/** A valid hostname label (RFC 1123, ≤ 63 chars) derived from the task id. */
export function hostnameOf(taskId: string): string {
  const label = taskId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/g, "");
  return label || "task";
}
