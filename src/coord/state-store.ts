import { EventEmitter } from "node:events";
import { ConflictError, CoordinationError } from "../common/errors.js";
import { readJson } from "../common/json.js";
import type { Logger } from "../common/logger.js";
import { parallel } from "../common/parallel.js";
import { JobSchema, TaskInstanceSchema } from "../common/schemas/state.js";
import type { DesiredState, Job, TaskInstance, TaskState } from "../common/types.js";
import { zpaths, type ZPaths } from "./paths.js";
import { retryRead } from "./read-retry.js";
import { isZkCode, ZK, type Watcher, type ZkSession } from "./zk.js";

/**
 * Durable cluster state (jobs and task instances) in ZooKeeper, with an
 * in-memory copy.
 *
 * - Backups keep the copy warm by watching every znode (one-shot watches,
 *   re-armed on each read), so a takeover needs no reload: `becomeAuthoritative`
 *   syncs with the ZooKeeper leader and waits for the in-flight re-reads.
 * - The primary writes through: every write is a compare-and-set against the
 *   version it last saw, on the very session that holds its election node. A
 *   stale version means someone else wrote: the caller must stop acting.
 *
 * Layout: /jobs/<job> = Job JSON; /jobs/<job>/tasks/<index> = TaskInstance JSON.
 */

interface Entry<T> {
  value: T;
  version: number;
}

export interface StateStoreEvents {
  job: [Job | undefined, string];
  task: [TaskInstance | undefined, string];
}

export interface StateStore {
  readonly jobs: ReadonlyMap<string, Job>;
  tasksOf(jobId: string): TaskInstance[];
  task(jobId: string, index: number): TaskInstance | undefined;
  allTasks(): Iterable<TaskInstance>;
  /** Tasks whose `nodeId` is this node (any state): what a node report or loss concerns, without a scan of every task. */
  tasksOnNode(nodeId: string): Iterable<TaskInstance>;
  /** Nodes that some task names as its `nodeId`. */
  nodesWithTasks(): Iterable<string>;
  /** Tasks with this desired and this recorded state (e.g. run/pending: what the scheduler places), without a scan. */
  tasksWhere(desired: DesiredState, state: TaskState): Iterable<TaskInstance>;
  taskCount(jobId: string): number;
  /** Changes whenever any task of the job changes: whatever was derived from its tasks at one revision still holds. */
  taskRevision(jobId: string): number;
  /** Durable create; ConflictError when the job exists. */
  createJob(job: Job): Promise<void>;
  updateJob(job: Job): Promise<void>;
  /** Removes a job and all its tasks (used when a dead job's name is reused). */
  deleteJob(jobId: string): Promise<void>;
  putTask(task: TaskInstance): Promise<void>;
  /** Removes some of a job's task records (a cron run that retention archived). */
  deleteTasks(jobId: string, indexes: readonly number[]): Promise<void>;
}

const MAX_PARALLEL_LOADS = 200;

export class ZkStateStore extends EventEmitter<StateStoreEvents> implements StateStore {
  private readonly jobEntries = new Map<string, Entry<Job>>();
  private readonly taskEntries = new Map<string, Map<number, Entry<TaskInstance>>>();
  private readonly jobView = new Map<string, Job>();
  // Indexes kept with every change of a task entry (setTaskEntry), so that the
  // primary's tick and each report touch the tasks concerned, not all of them.
  private readonly byNode = new TaskGroups();
  private readonly byStatus = new TaskGroups();
  private readonly revisions = new Map<string, number>();
  private revisionCounter = 0;
  private readonly p: ZPaths;
  private authoritative = false;
  private needsResync = false;
  private inflight = 0;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly zk: ZkSession, root: string, private readonly log?: Logger) {
    super();
    this.p = zpaths(root);
  }

  get jobs(): ReadonlyMap<string, Job> {
    return this.jobView;
  }

  tasksOf(jobId: string): TaskInstance[] {
    const m = this.taskEntries.get(jobId);
    if (!m) return [];
    return [...m.values()].map((e) => e.value).sort((a, b) => a.index - b.index);
  }

  task(jobId: string, index: number): TaskInstance | undefined {
    return this.taskEntries.get(jobId)?.get(index)?.value;
  }

  *allTasks(): Iterable<TaskInstance> {
    for (const m of this.taskEntries.values()) for (const e of m.values()) yield e.value;
  }

  tasksOnNode(nodeId: string): Iterable<TaskInstance> {
    return this.byNode.get(nodeId);
  }

  nodesWithTasks(): Iterable<string> {
    return this.byNode.keys();
  }

  tasksWhere(desired: DesiredState, state: TaskState): Iterable<TaskInstance> {
    return this.byStatus.get(`${desired}:${state}`);
  }

  taskCount(jobId: string): number {
    return this.taskEntries.get(jobId)?.size ?? 0;
  }

  taskRevision(jobId: string): number {
    return this.revisions.get(jobId) ?? 0;
  }

  /** The one place task entries change, so the indexes never drift from them. */
  private setTaskEntry(m: Map<number, Entry<TaskInstance>>, index: number, entry: Entry<TaskInstance> | undefined): void {
    const prev = m.get(index)?.value;
    if (prev) {
      this.byNode.remove(prev.nodeId, prev);
      this.byStatus.remove(`${prev.desired}:${prev.state}`, prev);
    }
    const jobId = entry?.value.jobId ?? prev?.jobId;
    if (jobId !== undefined) this.revisions.set(jobId, ++this.revisionCounter);
    if (!entry) {
      m.delete(index);
      return;
    }
    m.set(index, entry);
    const t = entry.value;
    this.byNode.add(t.nodeId, t);
    this.byStatus.add(`${t.desired}:${t.state}`, t);
  }

  /** Loads everything and arms watches. */
  async start(): Promise<void> {
    this.zk.on("reconnected", () => {
      if (!this.needsResync || this.authoritative) return;
      this.needsResync = false;
      void this.track(() => this.resync());
    });
    await this.zk.ensurePath(this.p.jobs);
    await this.track(() => this.loadJobList());
    await this.drained();
  }

  /**
   * Called on election: make sure every write that preceded our election has
   * reached the cache, then stop watching (we are the only writer from now on).
   */
  async becomeAuthoritative(): Promise<void> {
    await this.zk.sync(this.p.jobs);
    // Watch notifications are delivered before the sync reply; wait for the reads they started.
    await this.drained();
    await this.track(() => this.loadJobList());
    await this.drained();
    this.authoritative = true;
  }

  /** Runs a (retried) read, counted so `drained()` can wait for it; a read given up on triggers a resync on reconnect. */
  private track(fn: () => Promise<void>): Promise<void> {
    this.inflight++;
    return retryRead(fn, () => this.zk.isAlive)
      .then((ok) => {
        if (!ok && this.zk.isAlive) {
          this.log?.warn("state read failed repeatedly; the copy resyncs on the next reconnect");
          this.needsResync = true;
        }
      })
      .finally(() => {
        this.inflight--;
        if (this.inflight === 0) {
          const w = this.drainWaiters;
          this.drainWaiters = [];
          for (const f of w) f();
        }
      });
  }

  private drained(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  private watchOrNot(fn: () => void): (() => void) | undefined {
    return this.authoritative ? undefined : fn;
  }

  /** Re-reads every job and task list (re-arming their watches) after reads were given up. */
  private async resync(): Promise<void> {
    await this.loadJobList();
    for (const id of [...this.jobEntries.keys()]) {
      await this.loadJob(id);
      await this.loadTaskList(id);
      for (const i of this.taskEntries.get(id)?.keys() ?? []) await this.loadTask(id, i);
    }
  }

  private async loadJobList(): Promise<void> {
    const names = await this.zk.children(this.p.jobs, this.watchOrNot(() => void this.track(() => this.loadJobList())));
    const ids = new Set(names.map((n) => decodeURIComponent(n)));
    for (const id of [...this.jobEntries.keys()]) {
      if (!ids.has(id)) this.forgetJob(id);
    }
    const missing = [...ids].filter((id) => !this.jobEntries.has(id));
    await parallel(missing, MAX_PARALLEL_LOADS, (id) => this.track(() => this.loadJob(id)));
  }

  private forgetJob(id: string): void {
    this.jobEntries.delete(id);
    this.jobView.delete(id);
    const m = this.taskEntries.get(id);
    if (m) for (const i of [...m.keys()]) this.setTaskEntry(m, i, undefined);
    this.taskEntries.delete(id);
    this.emit("job", undefined, id);
  }

  private async loadJob(id: string): Promise<void> {
    const r = await this.zk.getIfExists(this.p.job(id), this.watchOrNot(() => void this.track(() => this.loadJob(id))));
    if (!r) {
      if (this.jobEntries.has(id)) this.forgetJob(id);
      return;
    }
    const cur = this.jobEntries.get(id);
    const isNew = !cur;
    if (!cur || r.stat.version > cur.version) {
      const job = readJson(JobSchema, r.data, this.p.job(id));
      this.jobEntries.set(id, { value: job, version: r.stat.version });
      this.jobView.set(id, job);
      this.emit("job", job, id);
    }
    if (isNew) await this.loadTaskList(id);
  }

  private async loadTaskList(jobId: string): Promise<void> {
    const reload = this.watchOrNot(() => void this.track(() => this.loadTaskList(jobId)));
    // The job node is created a moment before its tasks node: wait for the latter.
    if (!(await this.zk.exists(this.p.tasks(jobId), reload))) return;
    const names = await this.zk.children(this.p.tasks(jobId), this.watchOrNot(() => void this.track(() => this.loadTaskList(jobId))));
    const m = this.taskEntries.get(jobId) ?? new Map<number, Entry<TaskInstance>>();
    this.taskEntries.set(jobId, m);
    const missing = names.map(Number).filter((i) => !m.has(i));
    await parallel(missing, MAX_PARALLEL_LOADS, (i) => this.track(() => this.loadTask(jobId, i)));
  }

  /**
   * One watcher for every task node, told the path: a closure per watched
   * task (re-made on each read) was the largest part of a backup's heap with
   * 100,000 tasks.
   */
  private readonly taskWatcher: Watcher = (_ev, path) => {
    const [job, tasks, index] = path.slice(this.p.jobs.length + 1).split("/");
    if (job === undefined || tasks !== "tasks" || index === undefined) return;
    const jobId = decodeURIComponent(job);
    void this.track(() => this.loadTask(jobId, Number(index)));
  };

  private async loadTask(jobId: string, index: number): Promise<void> {
    const r = await this.zk.getIfExists(this.p.task(jobId, index), this.authoritative ? undefined : this.taskWatcher);
    const m = this.taskEntries.get(jobId);
    if (!m) return;
    if (!r) {
      const gone = m.get(index);
      this.setTaskEntry(m, index, undefined);
      if (gone) this.emit("task", undefined, gone.value.id);
      return;
    }
    const cur = m.get(index);
    if (!cur || r.stat.version > cur.version) {
      const t = readJson(TaskInstanceSchema, r.data, this.p.task(jobId, index));
      this.setTaskEntry(m, index, { value: t, version: r.stat.version });
      this.emit("task", t, t.id);
    }
  }

  // ---- writes (primary only) ----

  async createJob(job: Job): Promise<void> {
    const path = this.p.job(job.id);
    try {
      // Retried through a connection loss (a ZooKeeper server failing over), so a submission is not refused for it.
      await this.zk.createRetrying(path, JSON.stringify(job));
    } catch (e) {
      if (isZkCode(e, ZK.NODEEXISTS)) {
        // Stored by an earlier attempt whose answer was lost: make the copy know it, so it runs.
        if (!this.jobEntries.has(job.id)) await this.refreshJob(job.id).catch(() => undefined);
        throw new ConflictError(`job ${job.id} already exists`, { jobId: job.id });
      }
      throw e;
    }
    // The job is durable from here: a missing tasks node is made by the first putTask (createTask).
    await this.zk.createIfAbsent(this.p.tasks(job.id)).catch((e: unknown) => this.log?.warn({ job: job.id, err: e }, "tasks node not created yet"));
    this.jobEntries.set(job.id, { value: job, version: 0 });
    this.jobView.set(job.id, job);
    const stale = this.taskEntries.get(job.id);
    if (stale) for (const i of [...stale.keys()]) this.setTaskEntry(stale, i, undefined);
    this.taskEntries.set(job.id, new Map());
    this.emit("job", job, job.id);
  }

  async updateJob(job: Job): Promise<void> {
    const cur = this.jobEntries.get(job.id);
    if (!cur) throw new ConflictError(`job ${job.id} is not in the state`);
    let stat;
    try {
      stat = await this.casSet(this.p.job(job.id), JSON.stringify(job), cur.version);
    } catch (e) {
      if (e instanceof ConflictError) await this.refreshJob(job.id);
      throw e;
    }
    this.jobEntries.set(job.id, { value: job, version: stat.version });
    this.jobView.set(job.id, job);
    this.emit("job", job, job.id);
  }

  async deleteJob(jobId: string): Promise<void> {
    const m = this.taskEntries.get(jobId);
    if (m) for (const [i, e] of m) await this.zk.delete(this.p.task(jobId, i), e.version);
    // Tasks created by a previous primary that this copy never saw (none when a deletion cut short already removed the tasks node).
    const left = (await this.zk.exists(this.p.tasks(jobId))) ? await this.zk.children(this.p.tasks(jobId)) : [];
    for (const c of left) await this.zk.delete(`${this.p.tasks(jobId)}/${c}`);
    await this.zk.delete(this.p.tasks(jobId));
    const cur = this.jobEntries.get(jobId);
    await this.zk.delete(this.p.job(jobId), cur?.version ?? -1);
    this.forgetJob(jobId);
  }

  async deleteTasks(jobId: string, indexes: readonly number[]): Promise<void> {
    const m = this.taskEntries.get(jobId);
    for (const i of indexes) {
      const e = m?.get(i);
      await this.zk.delete(this.p.task(jobId, i), e?.version ?? -1);
      if (m && e) {
        this.setTaskEntry(m, i, undefined);
        this.emit("task", undefined, e.value.id);
      }
    }
  }

  async putTask(task: TaskInstance): Promise<void> {
    let m = this.taskEntries.get(task.jobId);
    if (!m) {
      m = new Map();
      this.taskEntries.set(task.jobId, m);
    }
    const cur = m.get(task.index);
    const path = this.p.task(task.jobId, task.index);
    const data = JSON.stringify(task);
    if (!cur) {
      try {
        await this.createTask(task.jobId, path, data);
      } catch (e) {
        if (isZkCode(e, ZK.NODEEXISTS)) {
          // Our copy missed it (written just before we took over): learn it, let the caller retry.
          await this.refreshTask(task.jobId, task.index);
          throw new ConflictError(`task ${task.id} exists in ZooKeeper but not in this copy; reloaded it`, { taskId: task.id });
        }
        throw e;
      }
      this.setTaskEntry(m, task.index, { value: task, version: 0 });
    } else {
      let stat;
      try {
        stat = await this.casSet(path, data, cur.version);
      } catch (e) {
        if (e instanceof ConflictError) await this.refreshTask(task.jobId, task.index);
        throw e;
      }
      this.setTaskEntry(m, task.index, { value: task, version: stat.version });
    }
    this.emit("task", task, task.id);
  }

  /**
   * A primary that died between creating a job's node and its tasks node left
   * the job without the latter (the two creates are not one transaction): make
   * it here, or the job's tasks could never be written.
   */
  private async createTask(jobId: string, path: string, data: string): Promise<void> {
    try {
      await this.zk.create(path, data);
    } catch (e) {
      if (!isZkCode(e, ZK.NONODE) || !this.jobEntries.has(jobId)) throw e;
      await this.zk.createIfAbsent(this.p.tasks(jobId));
      this.log?.warn({ job: jobId }, "job had no tasks node (its creation was cut short); created it");
      await this.zk.create(path, data);
    }
  }

  /** Re-reads one job unconditionally (after a conflict showed our copy is behind). */
  private async refreshJob(jobId: string): Promise<void> {
    const r = await this.zk.getIfExists(this.p.job(jobId));
    if (!r) return;
    const job = readJson(JobSchema, r.data, this.p.job(jobId));
    this.jobEntries.set(jobId, { value: job, version: r.stat.version });
    this.jobView.set(jobId, job);
    this.log?.warn({ job: jobId, version: r.stat.version }, "job copy was behind ZooKeeper; reloaded");
    this.emit("job", job, jobId);
  }

  /** Re-reads one task unconditionally (after a conflict showed our copy is behind). */
  private async refreshTask(jobId: string, index: number): Promise<void> {
    const r = await this.zk.getIfExists(this.p.task(jobId, index));
    if (!r) return;
    let m = this.taskEntries.get(jobId);
    if (!m) {
      m = new Map();
      this.taskEntries.set(jobId, m);
    }
    const t = readJson(TaskInstanceSchema, r.data, this.p.task(jobId, index));
    this.setTaskEntry(m, index, { value: t, version: r.stat.version });
    this.log?.warn({ task: t.id, version: r.stat.version }, "task copy was behind ZooKeeper; reloaded");
    this.emit("task", t, t.id);
  }

  private async casSet(path: string, data: string, version: number) {
    try {
      return await this.zk.set(path, data, version);
    } catch (e) {
      if (e instanceof CoordinationError && e.zkCode === ZK.BADVERSION) {
        throw new ConflictError(`${path} changed since this copy read it`, { path });
      }
      throw e;
    }
  }
}

/** Tasks grouped by a key (a node, a desired/recorded state), each group by task id. */
class TaskGroups {
  private readonly groups = new Map<string, Map<string, TaskInstance>>();

  add(key: string | undefined, t: TaskInstance): void {
    if (key === undefined) return;
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, (g = new Map()));
    g.set(t.id, t);
  }

  remove(key: string | undefined, t: TaskInstance): void {
    if (key === undefined) return;
    const g = this.groups.get(key);
    if (g?.get(t.id) !== t) return;
    g.delete(t.id);
    if (g.size === 0) this.groups.delete(key);
  }

  get(key: string): Iterable<TaskInstance> {
    return this.groups.get(key)?.values() ?? [];
  }

  keys(): Iterable<string> {
    return this.groups.keys();
  }
}
