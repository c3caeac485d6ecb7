/**
 * Size-based rotation of task logs by copy-truncate.
 *
 * The wrapper's stdout/stderr are opened O_APPEND, so after the truncation the
 * task's next write lands at the new end (offset 0) instead of leaving a hole.
 * Bytes written between the copy and the truncation are lost; that window is
 * the price of not having to signal the task to reopen its files.
 */
import { copyFile, rename, stat, truncate } from "node:fs/promises";

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === "ENOENT";
}

/**
 * When `path` is larger than `maxBytes`: shifts path.1 … path.(keep-1) up by one
 * (path.keep drops out), copies path to path.1 and truncates path. keep = 0 just
 * truncates. Returns whether it rotated.
 */
export async function rotateIfLarger(path: string, maxBytes: number, keep: number): Promise<boolean> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    if (isMissing(e)) return false;
    throw e;
  }
  if (size <= maxBytes) return false;
  if (keep > 0) {
    for (let i = keep - 1; i >= 1; i--) {
      try {
        await rename(`${path}.${i}`, `${path}.${i + 1}`);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    }
    await copyFile(path, `${path}.1`);
  }
  await truncate(path, 0);
  return true;
}

export interface LogRotatorOptions {
  maxBytes: number;
  keep: number;
  /** Check period; clamped to [MIN_INTERVAL_MS, MAX_INTERVAL_MS]. */
  intervalMs: number;
  onError?: (path: string, error: unknown) => void;
}

export const MIN_INTERVAL_MS = 50;
export const MAX_INTERVAL_MS = 3_600_000;

/** Periodically rotates a set of files (e.g. the stdout/stderr of every running task). */
export class LogRotator {
  private readonly paths = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly intervalMs: number;

  constructor(private readonly opts: LogRotatorOptions) {
    this.intervalMs = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, opts.intervalMs));
  }

  add(path: string): void {
    this.paths.add(path);
  }

  remove(path: string): void {
    this.paths.delete(path);
  }

  /** One pass over all files; errors of one file do not stop the others. */
  async runOnce(): Promise<void> {
    for (const p of [...this.paths]) {
      try {
        await rotateIfLarger(p, this.opts.maxBytes, this.opts.keep);
      } catch (e) {
        this.opts.onError?.(p, e);
      }
    }
  }

  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      // The next pass is scheduled only after this one finished, so passes never overlap.
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        if (this.timer) this.timer = setTimeout(tick, this.intervalMs).unref();
      });
    };
    this.timer = setTimeout(tick, this.intervalMs).unref();
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
