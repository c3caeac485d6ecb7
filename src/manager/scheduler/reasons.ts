/**
 * Rejection reasons. Checkers record a small integer code per rejected node so
 * the hot scan loop only increments counters; the text is looked up once when
 * a task turns out to be unplaceable. The table outlives calls (it belongs to
 * the cluster index, whose cached verdicts hold its codes); each call lists
 * the codes it uses in the order it first asks for them, which is the order
 * its metrics report them in, whatever earlier calls registered.
 */

/** Code 0 means "feasible"; real reasons start at 1. */
export const FEASIBLE = 0;

/** Who recorded a reason: the checker's name, and for a resource that ran out, which one. */
export interface ReasonOrigin {
  checker: string;
  /** Set when the node was feasible but this resource (cpu, memory, disk, port N) was used up. */
  dimension?: string;
}

export class ReasonTable {
  private readonly texts: string[] = [""];
  private readonly origins: ReasonOrigin[] = [{ checker: "" }];
  private readonly codes = new Map<string, number>();
  private call = 0;
  /** Per code: the last call that asked for it. */
  private readonly askedIn: number[] = [0];
  /** The codes asked for in the current call, in the order first asked. */
  readonly inCall: number[] = [];

  /** Starts a call: `inCall` lists only the codes asked for from now on. */
  beginCall(): void {
    this.call++;
    this.inCall.length = 0;
  }

  /** The code of `text`, registering it (with the checker that records it) on first use. */
  code(text: string, origin: ReasonOrigin): number {
    let code = this.codes.get(text);
    if (code === undefined) {
      code = this.texts.length;
      this.texts.push(text);
      this.origins.push(origin);
      this.codes.set(text, code);
    }
    if (this.askedIn[code] !== this.call) {
      this.askedIn[code] = this.call;
      this.inCall.push(code);
    }
    return code;
  }

  text(code: number): string {
    const text = this.texts[code];
    if (text === undefined || code === FEASIBLE) throw new RangeError(`unknown reason code ${code}`);
    return text;
  }

  origin(code: number): ReasonOrigin {
    const origin = this.origins[code];
    if (origin === undefined || code === FEASIBLE) throw new RangeError(`unknown reason code ${code}`);
    return origin;
  }

  /** Number of codes handed out so far (including FEASIBLE). */
  get size(): number {
    return this.texts.length;
  }
}

/**
 * Turns per-code node counts into the public record, ordered by count (most
 * common first) and then by text, so the order is stable and useful.
 */
export function reasonRecord(table: ReasonTable, counts: ArrayLike<number>): Record<string, number> {
  const entries: [string, number][] = [];
  for (let code = 1; code < counts.length; code++) {
    const count = counts[code] ?? 0;
    if (count > 0) entries.push([table.text(code), count]);
  }
  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return Object.fromEntries(entries);
}

/** "3 nodes: memory exhausted; 1 node: constraint os = linux failed" */
export function summarizeReasons(reasons: Record<string, number>): string {
  const parts = Object.entries(reasons).map(([text, count]) => `${count} ${count === 1 ? "node" : "nodes"}: ${text}`);
  return parts.length === 0 ? "no nodes in the cluster" : parts.join("; ");
}
