/**
 * Agents' reports waiting for the primary's queue, reconciled together:
 * reports that arrive while one waits for its turn join it, so a burst (every
 * machine telling that its new tasks run) costs one turn of the queue and one
 * set of parallel writes, not a turn and a round trip per report. Each report
 * is still answered on its own, once its own writes are durable.
 *
 * Reconciling several reports against the same copy is safe because a report
 * only changes the tasks bound to its own node. An agent has one report in
 * flight at a time; should two of one agent meet all the same (a retry), the
 * later one waits for the next batch, so it is reconciled after the first.
 */
export class ReportBatcher<R extends { agentId: string }, A> {
  private waiting: Waiting<R, A>[] = [];
  private scheduled = false;

  constructor(
    /** Runs `fn` in its turn (the primary's serial queue); rejects without running it when the primary is fenced. */
    private readonly run: (fn: () => Promise<void>) => Promise<void>,
    /** Reconciles a batch: one settled answer per report, in order. */
    private readonly reconcile: (reports: R[]) => Promise<PromiseSettledResult<A>[]>,
  ) {}

  /** Resolves with the report's answer once its reconcile is durable. */
  add(report: R): Promise<A> {
    return new Promise<A>((resolve, reject) => {
      this.waiting.push({ report, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    let batch: Waiting<R, A>[] | undefined;
    this.run(async () => {
      this.scheduled = false;
      batch = this.take();
      const results = await this.reconcile(batch.map((w) => w.report));
      results.forEach((r, i) => (r.status === "fulfilled" ? batch![i]!.resolve(r.value) : batch![i]!.reject(r.reason)));
    })
      .catch((e: unknown) => {
        // Refused before it ran (fenced): everyone waiting gets the refusal.
        if (!batch) {
          this.scheduled = false;
          batch = this.take();
        }
        for (const w of batch) w.reject(e);
      })
      .finally(() => this.schedule());
  }

  /** The waiting reports, at most one per agent (the earliest); the rest stay for the next batch. */
  private take(): Waiting<R, A>[] {
    const agents = new Set<string>();
    const batch: Waiting<R, A>[] = [];
    const later: Waiting<R, A>[] = [];
    for (const w of this.waiting) {
      if (agents.has(w.report.agentId)) later.push(w);
      else {
        agents.add(w.report.agentId);
        batch.push(w);
      }
    }
    this.waiting = later;
    return batch;
  }
}

interface Waiting<R, A> {
  report: R;
  resolve: (answer: A) => void;
  reject: (e: unknown) => void;
}
