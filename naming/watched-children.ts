import type { WatchEvent, ZkSession } from "../src/coord/zk.js";

/**
 * The children of one znode, read with watches that are armed at most once
 * per session. ZooKeeper watches are one-shot; re-arming on every read would
 * pile up duplicate callbacks (the C client keeps every registration), and a
 * path that does not exist yet cannot hold a child watch at all, so an exists
 * watch stands in until the node appears.
 *
 * Session events (disconnect, reconnect) are delivered to every path watcher
 * by the C client but do not consume the watch; they are ignored here. The
 * owner re-reads on reconnect itself.
 */
export class WatchedChildren {
  private existsArmed?: { zk: ZkSession };
  private childArmed?: { zk: ZkSession };
  private disposed = false;

  constructor(readonly path: string, private readonly onEvent: (zk: ZkSession) => void) {}

  async read(zk: ZkSession): Promise<string[]> {
    const stat = await this.arm(zk, "exists", (w) => zk.exists(this.path, w));
    if (!stat) return [];
    return this.arm(zk, "child", (w) => zk.children(this.path, w));
  }

  /** Runs the read with a watch when none is armed on this session; the marker is set first so an early event clears it. */
  private async arm<T>(zk: ZkSession, kind: "exists" | "child", op: (watch?: (ev: WatchEvent) => void) => Promise<T>): Promise<T> {
    const current = kind === "exists" ? this.existsArmed : this.childArmed;
    if (current?.zk === zk) return op(undefined);
    const marker = { zk };
    this.setArmed(kind, marker);
    try {
      return await op((ev) => this.fired(kind, marker, ev));
    } catch (e) {
      if ((kind === "exists" ? this.existsArmed : this.childArmed) === marker) this.setArmed(kind, undefined);
      throw e;
    }
  }

  private setArmed(kind: "exists" | "child", v: { zk: ZkSession } | undefined): void {
    if (kind === "exists") this.existsArmed = v;
    else this.childArmed = v;
  }

  private fired(kind: "exists" | "child", marker: { zk: ZkSession }, ev: WatchEvent): void {
    if (ev === "session") return;
    if ((kind === "exists" ? this.existsArmed : this.childArmed) === marker) this.setArmed(kind, undefined);
    // The node came or went: ZooKeeper sends one NodeDeleted per connection, and the C client did not
    // always hand it to both our watchers (seen with 3.8), so neither watch can be trusted any longer.
    if (ev === "deleted" || ev === "created") {
      if (this.existsArmed?.zk === marker.zk) this.existsArmed = undefined;
      if (this.childArmed?.zk === marker.zk) this.childArmed = undefined;
    }
    if (!this.disposed) this.onEvent(marker.zk);
  }

  /** Later events of watches still registered in ZooKeeper are ignored. */
  dispose(): void {
    this.disposed = true;
  }
}

/**
 * Runs an async job one at a time; a request made while it runs schedules
 * exactly one more run (level-triggered: the next run sees everything). A run
 * that fails after such a request is superseded by it rather than ending the
 * loop: the request may come from a new session, and the failed run from the
 * old one.
 */
export class SerialJob {
  private running?: Promise<void>;
  private again = false;

  constructor(private readonly job: () => Promise<void>) {}

  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          try {
            await this.job();
          } catch (e) {
            if (!this.again) throw e;
          }
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
