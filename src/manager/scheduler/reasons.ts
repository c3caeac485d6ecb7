/**
 * Rejection reasons. Checkers record a small integer code per rejected node so
 * the hot scan loop only increments counters; the text is looked up once when
 * a task turns out to be unplaceable.
 */

/** Code 0 means "feasible"; real reasons start at 1. */
export const FEASIBLE = 0;

export class ReasonTable {
  private readonly texts: string[] = [""];
  private readonly codes = new Map<string, number>();

  readonly nodeDraining = this.code("node draining");
  readonly nodeLost = this.code("node lost");
  readonly cpuExhausted = this.code("cpu exhausted");
  readonly memoryExhausted = this.code("memory exhausted");
  readonly diskExhausted = this.code("disk exhausted");
  readonly lxcUnavailable = this.code("driver lxc unavailable");
  readonly processUnavailable = this.code("driver process unavailable");

  /** The code of `text`, registering it on first use. */
  code(text: string): number {
    let code = this.codes.get(text);
    if (code === undefined) {
      code = this.texts.length;
      this.texts.push(text);
      this.codes.set(text, code);
    }
    return code;
  }

  text(code: number): string {
    const text = this.texts[code];
    if (text === undefined || code === FEASIBLE) throw new RangeError(`unknown reason code ${code}`);
    return text;
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
