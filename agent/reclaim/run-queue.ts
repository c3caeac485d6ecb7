/**
 * How long a task's threads were runnable but waited for a CPU: the demand
 * its cpu use alone does not show. A task starved by the machine's load (its
 * use low because it is not served) must not look idle, or its reservation
 * would be lent out just when it needs it.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { CgroupV1 } from "../driver/cgroup.js";

/** Run-queue wait of every live thread of the task's cpu cgroup, summed (ns); undefined when the cgroup is gone. */
export async function runQueueWaitNs(cgroup: CgroupV1, name: string, proc = "/proc"): Promise<number | undefined> {
  const tids = await readFile(join(cgroup.dir("cpu", name), "tasks"), "utf8").catch(() => undefined);
  if (tids === undefined) return undefined;
  let sum = 0;
  for (const tid of tids.split("\n")) {
    if (!/^\d+$/.test(tid)) continue;
    // "<ns on cpu> <ns waiting on a run queue> <timeslices>"; a thread gone meanwhile counts nothing.
    const stat = await readFile(join(proc, tid, "schedstat"), "utf8").catch(() => undefined);
    const wait = Number(stat?.split(" ")[1]);
    if (Number.isFinite(wait)) sum += wait;
  }
  return sum;
}

/** Cores' worth of run-queue wait between two readings of one task (threads that exited take their wait with them: never negative). */
export function waitRate(previous: { at: number; ns: number } | undefined, at: number, ns: number): number | undefined {
  if (previous === undefined || at <= previous.at) return undefined;
  return Math.max(0, ns - previous.ns) / ((at - previous.at) * 1e6);
}
