/**
 * Which agents are pulling which blob, as far as this manager was told:
 * an agent that asks for a blob's peers is about to pull it. The answer
 * names the agents that asked before it and do not hold the blob yet, so on
 * a cold start (ten agents, no holder) the first goes to shared storage and
 * the others wait for it to become a peer instead of all reading storage
 * (docs/packages.md). Memory only, pure (time passed in): a manager that
 * restarts or takes over forgets, and agents then simply read storage.
 */

/** A pull not finished in this long is not waited for any more. */
export const PULL_TTL_MS = 120_000;

export class PullTracker {
  /** digest → agent → when it first asked. */
  private readonly pulls = new Map<string, Map<string, number>>();

  /** Records `agent` as pulling `digest` (keeping its first time) and returns who asked before it, oldest first. */
  note(digest: string, agent: string, now: number): string[] {
    this.expire(now);
    let byAgent = this.pulls.get(digest);
    if (!byAgent) this.pulls.set(digest, (byAgent = new Map()));
    const mine = byAgent.get(agent) ?? now;
    byAgent.set(agent, mine);
    return [...byAgent.entries()]
      .filter(([a, at]) => a !== agent && (at < mine || (at === mine && a < agent)))
      .sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1))
      .map(([a]) => a);
  }

  /** `agent` holds `digest` now: nobody waits for its pull any more. */
  done(digest: string, agent: string): void {
    const byAgent = this.pulls.get(digest);
    byAgent?.delete(agent);
    if (byAgent?.size === 0) this.pulls.delete(digest);
  }

  private expire(now: number): void {
    for (const [digest, byAgent] of this.pulls) {
      for (const [agent, at] of byAgent) if (now - at > PULL_TTL_MS) byAgent.delete(agent);
      if (byAgent.size === 0) this.pulls.delete(digest);
    }
  }
}
