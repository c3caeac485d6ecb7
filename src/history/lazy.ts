import type { HistoryConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import { HistoryStore } from "./store.js";

const RETRY_AFTER_MS = 10_000;

/**
 * The history store opened on first use, in the background: the embedded
 * engine costs about 250 MiB and up to 20 s at its first start, so a primary
 * that never archives nor answers a history query never pays for it, and a
 * takeover is not held up by it. `get()` answers undefined until it is open;
 * a failed open is retried after a pause.
 */
export class LazyHistory {
  private store?: HistoryStore;
  private opening?: Promise<void>;
  private failedAt = -Infinity;
  private closed = false;

  constructor(
    private readonly config: HistoryConfig,
    private readonly log: Logger,
    private readonly open: (c: HistoryConfig) => Promise<HistoryStore> = (c) => HistoryStore.open(c),
  ) {}

  /** The open store, or undefined while it opens (the first call starts opening it). */
  get(): HistoryStore | undefined {
    if (this.store || this.closed) return this.store;
    if (!this.opening && Date.now() - this.failedAt >= RETRY_AFTER_MS) this.opening = this.start();
    return undefined;
  }

  /** The store if it is open, never opening it (for what may do without, like the overview's archived count). */
  peek(): HistoryStore | undefined {
    return this.store;
  }

  /** Waits for the store (opening it if need be); undefined when it cannot be opened now. */
  async ready(): Promise<HistoryStore | undefined> {
    this.get();
    await this.opening;
    return this.store;
  }

  private async start(): Promise<void> {
    const t0 = Date.now();
    try {
      const store = await this.open(this.config);
      if (this.closed) {
        await store.close();
        return;
      }
      this.store = store;
      this.log.info({ engine: store.engine, ms: Date.now() - t0, migrations: store.migrationsApplied }, "history store open");
    } catch (e) {
      this.failedAt = Date.now();
      this.log.error({ err: e }, "cannot open the history store; retention waits and history queries fail until it opens");
    } finally {
      this.opening = undefined;
    }
  }

  /** Closes the store (and one still opening, once it opened): the embedded engine's lock is released for the next primary. */
  async close(): Promise<void> {
    this.closed = true;
    await this.opening;
    const s = this.store;
    this.store = undefined;
    await s?.close();
  }
}
