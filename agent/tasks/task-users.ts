import { ForbiddenError, UnavailableError } from "../../src/common/errors.js";
import type { TaskDispatch } from "../../src/common/protocol.js";
import { isRoot } from "../driver/fingerprint.js";

/**
 * Which user a task runs as. Like HTCondor's slot users, every running task
 * holds a uid of its own from the configured range (agent.taskUsers), with
 * the same number as its gid, so tasks can neither signal each other nor read
 * each other's files. The uids need no passwd entry: a range is configured
 * once for every machine, nothing is created on them, and a thousand
 * concurrent tasks need no thousand accounts (systemd's DynamicUser and
 * Kubernetes' runAsUser work the same way).
 *
 * A uid is held from the start of an attempt until its processes are gone;
 * the runner persists it in the task record, and a restarted agent holds the
 * uids of the tasks it re-adopts before handing out any. Root is only for a
 * task file saying `user: root` on an agent with agent.allowRootTasks.
 * An agent not running as root cannot switch users: its tasks run as itself.
 */

export interface TaskUser {
  uid: number;
  gid: number;
}

export interface TaskUsersConfig {
  uids: { first: number; last: number };
  allowRootTasks: boolean;
  /** The agent's id, named in refusals. */
  nodeId: string;
  /** Whether the agent can run tasks as other users; default: it runs as root. */
  switchUsers?: boolean;
}

const ROOT: TaskUser = { uid: 0, gid: 0 };

export class TaskUsers {
  private readonly held = new Set<number>();
  private next: number;

  private readonly switchUsers: boolean;

  constructor(private readonly c: TaskUsersConfig) {
    this.next = c.uids.first;
    this.switchUsers = c.switchUsers ?? isRoot();
  }

  private get size(): number {
    return this.c.uids.last - this.c.uids.first + 1;
  }

  private inRange(uid: number): boolean {
    return uid >= this.c.uids.first && uid <= this.c.uids.last;
  }

  /**
   * The user for a new attempt of `d` (undefined: the agent's own). The search
   * goes round the range from the last uid handed out, so a released uid is
   * the last to be reused.
   */
  acquire(d: TaskDispatch): TaskUser | undefined {
    if (d.spec.user === "root") {
      if (!this.c.allowRootTasks) throw new ForbiddenError(`task ${d.taskId} asks for user root, and agent ${this.c.nodeId} does not run tasks as root (agent.allowRootTasks is false)`);
      if (!this.switchUsers) throw new ForbiddenError(`task ${d.taskId} asks for user root, and agent ${this.c.nodeId} does not run as root`);
      return ROOT;
    }
    if (!this.switchUsers) return undefined;
    const { first } = this.c.uids;
    for (let i = 0; i < this.size; i++) {
      const uid = first + ((this.next - first + i) % this.size);
      if (this.held.has(uid)) continue;
      this.held.add(uid);
      this.next = uid + 1;
      return { uid, gid: uid };
    }
    throw new UnavailableError(`agent ${this.c.nodeId} has no free task uid: all ${this.size} of agent.taskUsers (${first}-${this.c.uids.last}) are held by running tasks`);
  }

  /** After a restart: the uid a re-adopted running task already holds. */
  hold(user: TaskUser): void {
    if (this.inRange(user.uid)) this.held.add(user.uid);
  }

  release(user: TaskUser): void {
    this.held.delete(user.uid);
  }

  /** How many uids running tasks hold. */
  get inUse(): number {
    return this.held.size;
  }
}
