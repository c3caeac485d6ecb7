/** `schedule:` a cron expression that makes a batch job periodic. */
import type { Checker } from "../checks.js";
import { checkCron } from "../cron.js";
import type { Path } from "../issues.js";

/** The schedule with its whitespace normalized, or undefined after reporting. */
export function checkSchedule(c: Checker, v: unknown, path: Path, explicitType: "service" | "batch" | undefined): string | undefined {
  const sched = c.string(v, path);
  if (sched === undefined) return undefined;
  if (explicitType === "service") c.add(path, "is for batch jobs only (set type: batch, or remove schedule)");
  const problem = checkCron(sched);
  if (problem) return c.add(path, problem);
  return sched.trim().split(/\s+/).join(" ");
}
