import type { WatchEvent, Watcher } from "./native.js";

export type WatchKind = "data" | "exists" | "child";

/**
 * A watch this session armed and not yet delivered, with what the read that
 * armed it saw (`seen`): after a re-attach it is armed again on the new
 * handle, and fired at once if the node changed meanwhile.
 */
export interface ArmedWatch {
  kind: WatchKind;
  path: string;
  user: Watcher;
  seen: string;
  live: boolean;
}

/** Which watches ZooKeeper fires for each node event (as the C client sorts them). */
const KINDS_FIRED: Partial<Record<WatchEvent, readonly WatchKind[]>> = {
  created: ["exists"],
  changed: ["data", "exists"],
  deleted: ["data", "exists", "child"],
  child: ["child"],
};

/**
 * The callers' watches, armed and not yet delivered, by path; arrays, since
 * there is nearly always one per path.
 *
 * Not a callback per watch in the binding: it never frees a per-call watch
 * callback (its watcher epilog has no delete), so every watch armed that way
 * pinned its closure, and what the closure held, for the life of the
 * process (750,000 of them on a manager after one large submission). The
 * reads that arm a watch set the handle's default watcher (`watch: true`),
 * which allocates nothing per watch, and its node events are handed out here
 * by path; the C client keeps one registration per path and kind instead of
 * one per read.
 */
export class WatchTable {
  private readonly byPath = new Map<string, ArmedWatch[]>();

  /** Records a caller's watch until it fires. */
  arm(kind: WatchKind, path: string, user: Watcher): ArmedWatch {
    const w: ArmedWatch = { kind, path, user, seen: "none", live: true };
    const onPath = this.byPath.get(path);
    if (onPath) onPath.push(w);
    else this.byPath.set(path, [w]);
    return w;
  }

  disarm(w: ArmedWatch): void {
    w.live = false;
    const onPath = this.byPath.get(w.path);
    const i = onPath?.indexOf(w) ?? -1;
    if (!onPath || i < 0) return;
    if (onPath.length === 1) this.byPath.delete(w.path);
    else onPath.splice(i, 1);
  }

  /** A node event of the current handle: to every watch on the path of a kind ZooKeeper fires for it. */
  deliver(ev: WatchEvent, path: string): void {
    const kinds = KINDS_FIRED[ev];
    const onPath = this.byPath.get(path);
    if (!kinds || !onPath) return;
    for (const w of [...onPath]) {
      if (!kinds.includes(w.kind)) continue;
      this.disarm(w);
      w.user(ev, path);
    }
  }

  /** Every pending watch, taken out of the table (to be armed again on a new handle). */
  takeAll(): ArmedWatch[] {
    const pending = [...this.byPath.values()].flat();
    this.byPath.clear();
    for (const w of pending) w.live = false;
    return pending;
  }

  clear(): void {
    this.byPath.clear();
  }
}
