/** Checks of a TaskLaunch shared by both drivers, and command resolution. */
import { stat } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { DriverError } from "../../src/common/errors.js";
import { DEFAULT_PIDS_MAX, DEFAULT_TASK_PATH, type TaskLaunch } from "./driver.js";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

export async function checkLaunch(l: TaskLaunch): Promise<void> {
  const ctx = { taskId: l.taskId, attempt: l.attempt };
  if (!l.taskId) throw new DriverError("taskId is empty", ctx);
  if (!Number.isInteger(l.attempt) || l.attempt < 0) throw new DriverError(`attempt must be a non-negative integer, got ${l.attempt}`, ctx);
  if (l.command.length === 0 || !l.command[0]) throw new DriverError("command is empty", ctx);
  if (l.command.some((a) => a.includes("\0"))) throw new DriverError("command contains a NUL byte", ctx);
  if (!isAbsolute(l.taskDir)) throw new DriverError(`taskDir must be absolute: ${l.taskDir}`, ctx);
  if (!(await isDirectory(l.taskDir))) throw new DriverError(`taskDir does not exist: ${l.taskDir}`, ctx);
  if (l.packageDir !== undefined) {
    if (!isAbsolute(l.packageDir)) throw new DriverError(`packageDir must be absolute: ${l.packageDir}`, ctx);
    if (!(await isDirectory(l.packageDir))) throw new DriverError(`packageDir does not exist: ${l.packageDir}`, ctx);
  }
  for (const [k, v] of Object.entries(l.env)) {
    if (!ENV_NAME.test(k)) throw new DriverError(`invalid environment variable name ${JSON.stringify(k)}`, { ...ctx, field: `env.${k}` });
    if (v.includes("\0")) throw new DriverError(`environment variable ${k} contains a NUL byte`, { ...ctx, field: `env.${k}` });
  }
  const r = l.resources;
  if (!(r.cpu >= 0) || !(r.memory >= 0)) throw new DriverError("resources.cpu and resources.memory must be ≥ 0", ctx);
  const pids = l.pidsMax ?? DEFAULT_PIDS_MAX;
  if (!Number.isInteger(pids) || pids < 1) throw new DriverError(`pidsMax must be a positive integer, got ${pids}`, ctx);
  if (l.user && (!Number.isInteger(l.user.uid) || !Number.isInteger(l.user.gid) || l.user.uid < 0 || l.user.gid < 0))
    throw new DriverError("user.uid and user.gid must be non-negative integers", ctx);
}

/**
 * command[0] as the task will exec it: relative paths with a slash are resolved
 * against `packageRoot` (the package dir as the task sees it), bare names are left
 * for the PATH lookup of the exec.
 */
export function resolveCommand(l: TaskLaunch, packageRoot: string | undefined): string[] {
  const [cmd, ...rest] = l.command as [string, ...string[]];
  if (!cmd.includes("/") || isAbsolute(cmd)) return [cmd, ...rest];
  if (packageRoot === undefined) throw new DriverError(`command ${JSON.stringify(cmd)} is relative to the package dir, but the task has no package`, { taskId: l.taskId });
  return [resolve(packageRoot, cmd), ...rest];
}

export function taskEnv(l: TaskLaunch): Record<string, string> {
  return { PATH: DEFAULT_TASK_PATH, ...l.env };
}
