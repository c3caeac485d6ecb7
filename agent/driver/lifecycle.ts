/** Pieces of the task lifecycle common to both drivers. */
import { chmod, chown, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const WORK_DIR = "work";
/** How long to wait for the exit record after SIGKILL before giving up (the wrapper needs a moment to write it). */
export const KILL_SETTLE_MS = 5000;

/** Creates taskDir/work, the task's own dir: mode 0700, owned by the task's user when one is given. */
export async function prepareWorkDir(taskDir: string, user: { uid: number; gid: number } | undefined): Promise<string> {
  const work = join(taskDir, WORK_DIR);
  await mkdir(work, { recursive: true });
  await chmod(work, 0o700);
  if (user) await chown(work, user.uid, user.gid);
  return work;
}

/**
 * SIGTERM, then SIGKILL once `graceMs` passed without an exit. `deliver` sends a
 * signal to the task's processes; `exited` settles when the exit record exists.
 */
export async function terminateWithGrace(deliver: (sig: NodeJS.Signals) => Promise<void>, exited: Promise<unknown>, graceMs: number): Promise<void> {
  let done = false;
  const settled = exited.then(
    () => (done = true),
    () => (done = true),
  );
  if (graceMs > 0) {
    await deliver("SIGTERM");
    const ac = new AbortController();
    await Promise.race([settled, sleep(graceMs, undefined, { signal: ac.signal }).catch(() => undefined)]);
    ac.abort();
    if (done) return;
  }
  await deliver("SIGKILL");
  const ac = new AbortController();
  await Promise.race([settled, sleep(KILL_SETTLE_MS, undefined, { signal: ac.signal }).catch(() => undefined)]);
  ac.abort();
}
