import type { Logger } from "../src/common/logger.js";
import type { ZkSession } from "../src/coord/zk.js";
import type { NamingPaths } from "./layout.js";
import { serviceName, type ServiceName } from "./names.js";
import { liveSessionOf, loadFailed } from "./name-cache.js";
import { SerialJob, WatchedChildren } from "./watched-children.js";

/**
 * Every registered service name (all namespaces), kept current by child
 * watches on the naming root and on each namespace node. Each name found is
 * handed to `track` (the name cache), which loads its endpoints.
 */
export class ServiceCatalog {
  private readonly base: WatchedChildren;
  private readonly namespaces = new Map<string, { watch: WatchedChildren; services: string[] }>();
  private readonly job: SerialJob;
  private isLoaded = false;
  private readonly onWatch = (zk: ZkSession) => {
    if (zk === this.session()) this.reload();
  };

  constructor(
    private readonly paths: NamingPaths,
    private readonly session: () => ZkSession | undefined,
    private readonly track: (n: ServiceName) => void,
    private readonly log?: Logger,
  ) {
    this.base = new WatchedChildren(paths.base, this.onWatch);
    this.job = new SerialJob(() => this.loadAll());
  }

  get loaded(): boolean {
    return this.isLoaded;
  }

  /** Loads the list (a run already under way is followed by exactly one more). */
  load(): Promise<void> {
    return this.job.run();
  }

  reload(): void {
    void this.job.run().catch((err: unknown) => loadFailed(this.log, "(catalog)", err));
  }

  names(): ServiceName[] {
    const out: ServiceName[] = [];
    for (const [ns, { services }] of this.namespaces) for (const s of services) out.push(serviceName(ns, s));
    return out;
  }

  private async loadAll(): Promise<void> {
    const zk = liveSessionOf(this.session);
    const nsNames = await this.base.read(zk);
    for (const [ns, v] of this.namespaces) {
      if (!nsNames.includes(ns)) {
        v.watch.dispose();
        this.namespaces.delete(ns);
      }
    }
    for (const ns of nsNames) {
      let v = this.namespaces.get(ns);
      if (!v) {
        v = { watch: new WatchedChildren(this.paths.namespace(ns), this.onWatch), services: [] };
        this.namespaces.set(ns, v);
      }
      const services = await v.watch.read(zk);
      v.services = services.filter((s) => {
        try {
          serviceName(ns, s);
          return true;
        } catch {
          return false;
        }
      });
    }
    for (const n of this.names()) this.track(n);
    this.isLoaded = true;
  }
}
