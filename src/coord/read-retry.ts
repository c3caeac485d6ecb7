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

/**
 * The re-read after a one-shot watch fired, for copies that must never stop
 * following ZooKeeper (tokens, quotas: a stale copy would accept a revoked
 * token): retried every `pauseMs` until it succeeds, which re-arms the watch,
 * or until the owner closes.
 */
export async function rereadUntilArmed(reread: () => Promise<void>, open: () => boolean, onFailure: (e: unknown) => void, pauseMs = 1000): Promise<void> {
  while (open()) {
    try {
      await reread();
      return;
    } catch (e) {
      onFailure(e);
      await sleep(pauseMs);
    }
  }
}
