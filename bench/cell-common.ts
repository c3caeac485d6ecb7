import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Got } from "got";
import type { LocalCellOptions } from "../src/cell/local-cell.js";
import type { ClusterEvent } from "../src/manager/events.js";
import { startTestCell, type TestCell } from "../test/harness/cell.js";

/**
 * Shared set-up of the live-cell benches (P2–P5): a real local cell (ZooKeeper,
 * managers and agents as processes) in a temporary directory, an API client,
 * and a reader of the primary's event stream, so latencies are taken from the
 * moment the primary has recorded a change, not from a polling interval.
 */

export type BenchCell = TestCell;

/** The test harness's cell, with the benches' defaults: agents pick LXC when they can, quiet logs. */
export function startBenchCell(opts: Partial<LocalCellOptions> = {}): Promise<BenchCell> {
  return startTestCell({ agentDriver: "auto", reportInterval: "2s", env: { TORCA_LOG_LEVEL: "warn" }, ...daemonNodeArgs(), ...opts });
}

/**
 * Node flags for the cell's daemons, from the environment: with TORCA_BENCH_PROFILE_DIR=DIR they write CPU profiles
 * there (when they exit cleanly, so not a SIGKILLed one); TORCA_BENCH_NODE_ARGS adds flags of its own (space-separated,
 * for V8 experiments such as --max-semi-space-size=64).
 */
export function daemonNodeArgs(): Pick<LocalCellOptions, "nodeArgs"> {
  const dir = process.env["TORCA_BENCH_PROFILE_DIR"];
  const extra = (process.env["TORCA_BENCH_NODE_ARGS"] ?? "").split(" ").filter(Boolean);
  const args = [...(dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : []), ...extra];
  return args.length > 0 ? { nodeArgs: args } : {};
}

/** Progress of a long bench on stderr (stdout holds only its `name: value` lines): each phase as it starts, with the seconds since. */
export function progressOf(bench: string): (what: string) => void {
  const t0 = Date.now();
  return (what) => process.stderr.write(`${bench} [${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}\n`);
}

export interface TaskEventData {
  id: string;
  jobId: string;
  state: string;
  attempt: number;
  nodeId?: string;
}

/**
 * Follows `GET /v1/events` on one manager; `until(pred)` resolves with the time
 * (ms, monotonic) the first matching task event arrived.
 */
export class EventWatcher {
  private readonly waiters: { pred: (t: TaskEventData) => boolean; resolve: (at: number) => void }[] = [];
  private buffer = "";
  private stream?: ReturnType<Got["stream"]>;
  readonly all: { at: number; task: TaskEventData }[] = [];

  constructor(private readonly api: Got, private readonly url: string, private readonly keep = false) {}

  async open(): Promise<void> {
    // No request timeout (the client's default would cut the stream after 30 s) and the
    // data listener attached at once, so nothing flows past before it is there.
    const s = this.api.stream(`${this.url}/v1/events`, { timeout: { request: undefined }, retry: { limit: 0 } });
    this.stream = s;
    s.setEncoding("utf8");
    s.on("data", (chunk: string) => this.onData(chunk));
    await new Promise<void>((resolve, reject) => {
      s.once("response", () => resolve());
      s.once("error", reject);
    });
    s.on("error", (e: Error) => {
      this.failure = e;
    });
  }

  /** Set when the stream broke: a bench must not wait out its timeouts on a dead stream. */
  failure?: Error;

  private onData(text: string): void {
    this.buffer += text;
    let end;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const data = block.split("\n").find((l) => l.startsWith("data: "));
      if (!data) continue;
      const e = JSON.parse(data.slice(6)) as ClusterEvent;
      if (e.type !== "task") continue;
      const at = nowMs();
      const task = e.data as TaskEventData;
      if (this.keep) this.all.push({ at, task });
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i]!;
        if (w.pred(task)) {
          this.waiters.splice(i, 1);
          w.resolve(at);
        }
      }
    }
  }

  until(pred: (t: TaskEventData) => boolean, timeoutMs: number, what: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.findIndex((w) => w.resolve === done);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${what}: not seen within ${timeoutMs} ms${this.failure ? ` (event stream broke: ${this.failure.message})` : ""}`));
      }, timeoutMs);
      const done = (at: number) => {
        clearTimeout(timer);
        resolve(at);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  close(): void {
    this.stream?.destroy();
  }
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
}

export const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

/** Processes (and threads) the whole machine has created since boot (/proc/stat): the difference over a run counts what it forked. */
export function processesCreated(): number {
  return Number(/^processes (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1] ?? NaN);
}

/** True when this machine can run LXC tasks (root and lxc-execute). */
export function lxcUsable(): boolean {
  return process.getuid?.() === 0 && spawnable("lxc-execute");
}

function spawnable(cmd: string): boolean {
  return (process.env.PATH ?? "").split(":").some((d) => {
    try {
      return statSync(join(d, cmd)).isFile();
    } catch {
      return false;
    }
  });
}
