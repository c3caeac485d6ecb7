import { setTimeout as sleep } from "node:timers/promises";
import { CoordinationError } from "../../common/errors.js";
import { MODE_FLAGS, ZK, type CreateMode, type DataCb, type NativeClient, type StatCb, type Watcher, type ZkStat } from "./native.js";
import { connectHandle, SessionState, type ZkOptions } from "./session.js";
import type { ArmedWatch, WatchKind } from "./watches.js";
import type { AclEntry } from "./acl.js";

/**
 * A typed promise API over one ZooKeeper session: the znode operations, on
 * the session state machine of session.ts. Reads that take a watch record it
 * in the session's WatchTable, so a re-attached handle can arm it again.
 */
export class ZkSession extends SessionState {
  private constructor(client: NativeClient, opts: ZkOptions) {
    super(client, opts);
  }

  static async connect(opts: ZkOptions): Promise<ZkSession> {
    return new ZkSession(await connectHandle(opts), opts);
  }

  protected async readArming(kind: WatchKind, path: string, user: Watcher): Promise<{ seen: string; armed?: ArmedWatch }> {
    if (kind === "data") {
      const r = await this.getArmed(path, user);
      return { seen: r.value ? String(r.value.stat.mzxid) : "none", ...(r.armed ? { armed: r.armed } : {}) };
    }
    if (kind === "exists") {
      const r = await this.existsArmed(path, user);
      return { seen: r.value ? String(r.value.mzxid) : "none", ...(r.armed ? { armed: r.armed } : {}) };
    }
    const r = await this.childrenArmed(path, user);
    return { seen: r.armed?.seen ?? "none", ...(r.armed ? { armed: r.armed } : {}) };
  }

  /**
   * Creates a node. With a credential (acl.ts) its ACL is set by a set_acl sent
   * right behind the create, not after its reply, so no other session's
   * request can come between them on a known path; a sequential node's name is
   * known only from the reply. Resolves once both are applied.
   */
  async create(path: string, data: Buffer | string = "", mode: CreateMode = "persistent"): Promise<string> {
    const acl = this.aclOf(path);
    const sequential = mode === "sequential" || mode === "ephemeral-sequential";
    let aclSet: Promise<void> | undefined;
    const created = await this.call<string>("create", path, (resolve, reject) => {
      const rc = this.client.native.a_create(path, Buffer.from(data), MODE_FLAGS[mode], (rc, error, created) => {
        if (rc === ZK.OK) resolve(created);
        else reject(this.fail("create", path, rc, error));
      });
      if (rc === ZK.OK && acl && !sequential) aclSet = this.setAcl(path, acl);
      return rc;
    }).catch(async (e: unknown) => {
      // The set_acl then met someone else's node (same policy) or none: not ours to report.
      await aclSet?.catch(() => undefined);
      throw e;
    });
    if (acl && sequential) await this.setAcl(created, acl);
    else await aclSet;
    return created;
  }

  /** Replaces a node's ACL (a node deleted meanwhile is no error). */
  async setAcl(path: string, acl: readonly AclEntry[], version = -1): Promise<void> {
    return this.call("setAcl", path, (resolve, reject) =>
      this.client.native.a_set_acl(path, version, acl.map((e) => ({ perm: e.perm, scheme: e.scheme, auth: e.id })), (rc, error) => {
        if (rc === ZK.OK || rc === ZK.NONODE) resolve();
        else reject(this.fail("setAcl", path, rc, error));
      }),
    );
  }

  /**
   * Makes `path` (under `parent`, created as needed) hold exactly `data`,
   * whether it existed or not, through connection losses (a ZooKeeper server
   * failing over) within `withinMs`: the whole value is written each time, so
   * repeating a write whose outcome the loss left unknown is the same write.
   */
  async putRetrying(parent: string, path: string, data: string, withinMs = 2 * this.timeoutMs): Promise<void> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      try {
        if (!(await this.createIfAbsent(path, data))) await this.set(path, data);
        return;
      } catch (e) {
        // The parent is made only when missing: each ancestor costs a round trip on a session that may be queued behind large writes.
        if (isZkCode(e, ZK.NONODE) && Date.now() <= deadline) {
          await this.ensurePath(parent);
          continue;
        }
        if (!isZkCode(e, ZK.CONNECTIONLOSS) || Date.now() > deadline || !this.isAlive) throw e;
      }
      await sleep(100);
    }
  }

  /**
   * Creates a persistent node through connection losses. A create whose reply
   * was lost may have been applied, so on a retry the node already holding
   * exactly our data counts as ours; other data is NODEEXISTS.
   */
  async createRetrying(path: string, data: Buffer | string, withinMs = 2 * this.timeoutMs): Promise<void> {
    const deadline = Date.now() + withinMs;
    for (let retry = false; ; retry = true) {
      try {
        await this.create(path, data);
        return;
      } catch (e) {
        if (retry && isZkCode(e, ZK.NODEEXISTS) && (await this.getIfExists(path))?.data.equals(Buffer.from(data))) {
          // Ours, from the attempt whose reply was lost; its set_acl may have been lost with it.
          const acl = this.aclOf(path);
          if (acl) await this.setAcl(path, acl);
          return;
        }
        if (!isZkCode(e, ZK.CONNECTIONLOSS) || Date.now() > deadline || !this.isAlive) throw e;
      }
      await sleep(100);
    }
  }

  /** Creates the node; resolves false when it already exists. */
  async createIfAbsent(path: string, data: Buffer | string = "", mode: CreateMode = "persistent"): Promise<boolean> {
    try {
      await this.create(path, data, mode);
      return true;
    } catch (e) {
      if (isZkCode(e, ZK.NODEEXISTS)) return false;
      throw e;
    }
  }

  /** Creates every missing ancestor and the node itself (persistent, empty). */
  async ensurePath(path: string): Promise<void> {
    const parts = path.split("/").filter(Boolean);
    let cur = "";
    for (const p of parts) {
      cur += "/" + p;
      await this.createIfAbsent(cur);
    }
  }

  async exists(path: string, watch?: Watcher): Promise<ZkStat | undefined> {
    return (await this.existsArmed(path, watch)).value;
  }

  private async existsArmed(path: string, watch?: Watcher): Promise<{ value?: ZkStat; armed?: ArmedWatch }> {
    const armed = watch ? this.watches.arm("exists", path, watch) : undefined;
    try {
      const value = await this.call<ZkStat | undefined>("exists", path, (resolve, reject) => {
        const cb: StatCb = (rc, error, stat) => {
          if (rc === ZK.OK) resolve(stat);
          else if (rc === ZK.NONODE) resolve(undefined);
          else reject(this.fail("exists", path, rc, error));
        };
        return this.client.native.a_exists(path, armed !== undefined, cb);
      });
      // An exists watch stays armed on a missing node too.
      if (armed) armed.seen = value ? String(value.mzxid) : "none";
      return { ...(value ? { value } : {}), ...(armed ? { armed } : {}) };
    } catch (e) {
      if (armed) this.watches.disarm(armed);
      throw e;
    }
  }

  async get(path: string, watch?: Watcher): Promise<{ data: Buffer; stat: ZkStat }> {
    const r = await this.getIfExists(path, watch);
    if (!r) throw this.fail("get", path, ZK.NONODE, "no node");
    return r;
  }

  /**
   * Reads a node if it exists. With a watch, the caller also hears of the
   * node's creation: ZooKeeper leaves no data watch on a missing node, so an
   * exists watch is armed instead (and the read retried if it appeared meanwhile).
   */
  async getIfExists(path: string, watch?: Watcher): Promise<{ data: Buffer; stat: ZkStat } | undefined> {
    for (let tries = 0; tries < 3; tries++) {
      const r = (await this.getArmed(path, watch)).value;
      if (r || !watch) return r;
      if (!(await this.exists(path, watch))) return undefined;
    }
    return (await this.getArmed(path, watch)).value;
  }

  private async getArmed(path: string, watch?: Watcher): Promise<{ value?: { data: Buffer; stat: ZkStat }; armed?: ArmedWatch }> {
    const armed = watch ? this.watches.arm("data", path, watch) : undefined;
    try {
      const value = await this.call<{ data: Buffer; stat: ZkStat } | undefined>("get", path, (resolve, reject) => {
        const cb: DataCb = (rc, error, stat, data) => {
          if (rc === ZK.OK) resolve({ data: data ?? Buffer.alloc(0), stat });
          else if (rc === ZK.NONODE) resolve(undefined);
          else reject(this.fail("get", path, rc, error));
        };
        return this.client.native.a_get(path, armed !== undefined, cb);
      });
      if (!armed) return value ? { value } : {};
      // No data watch is left on a missing node.
      if (!value) {
        this.watches.disarm(armed);
        return {};
      }
      armed.seen = String(value.stat.mzxid);
      return { value, armed };
    } catch (e) {
      if (armed) this.watches.disarm(armed);
      throw e;
    }
  }

  async children(path: string, watch?: Watcher): Promise<string[]> {
    if (watch) return (await this.childrenArmed(path, watch)).value;
    return this.call("children", path, (resolve, reject) =>
      this.client.native.a_get_children(path, false, (rc, error, children) => {
        if (rc === ZK.OK) resolve(children ?? []);
        else if (rc === ZK.NONODE) resolve([]);
        else reject(this.fail("children", path, rc, error));
      }),
    );
  }

  /** Children with a child watch; the list's version (cversion) is what a re-arm compares. */
  private async childrenArmed(path: string, watch: Watcher): Promise<{ value: string[]; armed?: ArmedWatch }> {
    const armed = this.watches.arm("child", path, watch);
    try {
      const r = await this.call<{ children: string[]; cversion: number } | undefined>("children", path, (resolve, reject) =>
        this.client.native.a_get_children2(path, true, (rc, error, children, stat) => {
          if (rc === ZK.OK) resolve({ children: children ?? [], cversion: stat?.cversion ?? -1 });
          else if (rc === ZK.NONODE) resolve(undefined);
          else reject(this.fail("children", path, rc, error));
        }),
      );
      if (!r) {
        this.watches.disarm(armed);
        return { value: [] };
      }
      armed.seen = String(r.cversion);
      return { value: r.children, armed };
    } catch (e) {
      this.watches.disarm(armed);
      throw e;
    }
  }

  /** Versioned set (compare-and-set); version -1 sets unconditionally. Rejects with BADVERSION on a stale version. */
  async set(path: string, data: Buffer | string, version = -1): Promise<ZkStat> {
    return this.call("set", path, (resolve, reject) =>
      this.client.native.a_set(path, Buffer.from(data), version, (rc, error, stat) => {
        if (rc === ZK.OK) resolve(stat);
        else reject(this.fail("set", path, rc, error));
      }),
    );
  }

  async delete(path: string, version = -1): Promise<void> {
    return this.call("delete", path, (resolve, reject) =>
      this.client.native.a_delete_(path, version, (rc, error) => {
        if (rc === ZK.OK || rc === ZK.NONODE) resolve();
        else reject(this.fail("delete", path, rc, error));
      }),
    );
  }

  /** Deletes a node and everything below it (not atomic; used for clean-up only). */
  async deleteRecursive(path: string): Promise<void> {
    for (const c of await this.children(path)) await this.deleteRecursive(`${path}/${c}`);
    await this.delete(path);
  }

  /** Flushes the channel between this client's server and the leader (read-your-peers'-writes). */
  async sync(path: string): Promise<void> {
    return this.call("sync", path, (resolve, reject) =>
      this.client.native.a_sync(path, (rc, error) => {
        if (rc === ZK.OK) resolve();
        else reject(this.fail("sync", path, rc, error));
      }),
    );
  }
}

export function isZkCode(e: unknown, code: number): boolean {
  return e instanceof CoordinationError && e.zkCode === code;
}
