import { setTimeout as sleep } from "node:timers/promises";

/**
 * The one way tests wait. Every wait is bounded and says what it waited for:
 * a test that times out names the condition and the last thing it saw.
 *
 * - `until(what, probe)`: polls until `probe` returns a value other than
 *   `undefined`/`false`, and returns it.
 * - `eventually(what, check)`: retries an assertion (a function that throws)
 *   until it passes, rethrowing its last failure on timeout.
 * - `never(what, probe, windowMs)`: asserts that `probe` stays falsy for the
 *   whole window (the negative form: "no second task ever runs").
 *
 * Probes may throw while the system is in transition (a failover, a process
 * starting); such a throw counts as "not yet" and is reported if it is the
 * last thing seen.
 */
export interface WaitOptions {
  /** Default 10 s. */
  timeoutMs?: number;
  /** Default 50 ms. */
  intervalMs?: number;
  /** State a timeout reports besides the probe's last value: what the condition is about (mails received so far, a job's tasks). */
  show?: () => unknown;
}

const DEFAULTS = Object.freeze({ timeoutMs: 10_000, intervalMs: 50 });

type Probe<T> = () => T | undefined | false | null | Promise<T | undefined | false | null>;

function describe(last: unknown): string {
  if (last instanceof Error) return `last error: ${last.message}`;
  if (last === undefined) return "never satisfied";
  try {
    return `last seen: ${JSON.stringify(last)?.slice(0, 2000)}`;
  } catch {
    return `last seen: ${String(last)}`;
  }
}

export async function until<T>(what: string, probe: Probe<T>, opts: WaitOptions = {}): Promise<T> {
  const { timeoutMs, intervalMs, show } = { ...DEFAULTS, ...opts };
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false && v !== null) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${describe(last)}${show ? `; state: ${JSON.stringify(show())?.slice(0, 2000)}` : ""})`);
    await sleep(intervalMs);
  }
}

export async function eventually<T>(what: string, check: () => T | Promise<T>, opts: WaitOptions = {}): Promise<T> {
  const { timeoutMs, intervalMs } = { ...DEFAULTS, ...opts };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() >= deadline) {
        const err = e instanceof Error ? e : new Error(String(e));
        err.message = `${what}: still failing after ${timeoutMs} ms: ${err.message}`;
        throw err;
      }
    }
    await sleep(intervalMs);
  }
}

export async function never(what: string, probe: Probe<unknown>, windowMs: number, opts: Pick<WaitOptions, "intervalMs"> = {}): Promise<void> {
  const { intervalMs } = { ...DEFAULTS, ...opts };
  const end = Date.now() + windowMs;
  while (Date.now() < end) {
    const v = await probe();
    if (v !== undefined && v !== false && v !== null) throw new Error(`${what} happened within ${windowMs} ms: ${describe(v)}`);
    await sleep(intervalMs);
  }
}
