import { setTimeout as sleep } from "node:timers/promises";

/**
 * Watch-driven reads must not be dropped on a transient failure (a connection
 * loss mid-read): the watch that read would have re-armed is then gone and the
 * copy silently stops following ZooKeeper. Retries with a growing pause while
 * the session lives; resolves false when it gave up, so the caller can resync.
 */
export async function retryRead(fn: () => Promise<void>, sessionAlive: () => boolean, attempts = 10, baseDelayMs = 200): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await fn();
      return true;
    } catch {
      if (!sessionAlive() || attempt >= attempts) return false;
      await sleep(baseDelayMs * attempt);
    }
  }
}
