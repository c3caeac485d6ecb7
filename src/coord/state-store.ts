import { EventEmitter } from "node:events";
import { ConflictError, CoordinationError, UnavailableError } from "../common/errors.js";
import { readJson, sameJson } from "../common/json.js";
import type { Logger } from "../common/logger.js";
import { parallel } from "../common/parallel.js";
import { JobSchema, TaskInstanceSchema } from "../common/schemas/state.js";
import type { DesiredState, Job, TaskInstance, TaskState } from "../common/types.js";
import { zpaths, type ZPaths } from "./paths.js";
import { retryRead } from "./read-retry.js";
import { chunkOf, chunkRange, decodeChunk, encodeChunk, fitRecord, parseTasksChild } from "./store/chunks.js";
import { GroupCommitter } from "./store/group-commit.js";
import { LegacyZnodes } from "./store/legacy-znodes.js";
import { TaskGroups } from "./store/task-groups.js";
import { countTask, emptyTally, type TaskTally } from "./store/task-tally.js";
import { isZkCode, ZK, type Watcher, type ZkSession, type ZkStat } from "./zk.js";

/**
 * Durable cluster state (jobs and task instances) in ZooKeeper, with an
 * in-memory copy.
 *
 * - Backups keep the copy warm by watching every znode (one-shot watches,
 *   re-armed on each read), so a takeover needs no reload: `becomeAuthoritative`
 *   syncs with the ZooKeeper leader and waits for the in-flight re-reads
 *   (and reads everything again if a read was given up on).
 * - The primary writes through: every write is a compare-and-set against the
 *   version it last saw, on the very session that holds its election node. A
 *   stale version means someone else wrote: the caller must stop acting.
 *
 * Layout: /jobs/<job> = Job JSON; /jobs/<job>/tasks/c<k> = the job's task
 * records k·64 to k·64+63 as one JSON array (store/chunks.ts). Task writes
 * are group-committed per chunk (store/group-commit.ts): `putTask` resolves
 * once a compare-and-set of its chunk carrying it succeeded.
 *
 * Upgrade from one znode per task (/jobs/<job>/tasks/<index>): those are
 * read as well, and the primary, once authoritative, writes each range of
 * them into its chunk and then deletes them. A chunk, once it exists, wins:
 * per-index znodes in its range are ignored and deleted, so a primary dying
 * between the two steps leaves nothing that reads as a second record.
 */

interface Entry<T> {
  value: T;
  version: number;
}

/** What this copy knows of a chunk znode: its version (for the compare-and-set) and, when read, its last modification. */
interface ChunkMeta {
  version: number;
  mzxid?: number;
}

/** A job's task records and where each is stored. */
interface JobTasks {
  records: Map<number, TaskInstance>;
  /** Chunks that exist, by k. */
  chunks: Map<number, ChunkMeta>;
  /** Records read from per-index znodes (the layout before chunks) whose chunk does not exist: index → znode version. */
  legacy: Map<number, number>;
}

type ChunkOp = { put: TaskInstance } | { remove: number } | { rewrite: true };

export interface StateStoreEvents {
  job: [Job | undefined, string];
  task: [TaskInstance | undefined, string];
}

export interface StateStore {
  readonly jobs: ReadonlyMap<string, Job>;
  /** The job's tasks in index order; the same array until one of them changes (callers must not modify it). */
  tasksOf(jobId: string): readonly TaskInstance[];
  task(jobId: string, index: number): TaskInstance | undefined;
  allTasks(): Iterable<TaskInstance>;
  /** Tasks whose `nodeId` is this node (any state): what a node report or loss concerns, without a scan of every task. */
  tasksOnNode(nodeId: string): Iterable<TaskInstance>;
  /** Nodes that some task names as its `nodeId`. */
  nodesWithTasks(): Iterable<string>;
  /** Tasks with this desired and this recorded state (e.g. run/pending: what the scheduler places), without a scan. */
  tasksWhere(desired: DesiredState, state: TaskState): Iterable<TaskInstance>;
  taskCount(jobId: string): number;
  /** The job's tasks counted by state, kept with every change. */
  taskTally(jobId: string): Readonly<TaskTally>;
  /** Changes whenever any task of the job changes: whatever was derived from its tasks at one revision still holds. */
  taskRevision(jobId: string): number;
  /** Durable create; ConflictError when the job exists. */
  createJob(job: Job): Promise<void>;
  updateJob(job: Job): Promise<void>;
  /** Removes a job and all its tasks (used when a dead job's name is reused). */
  deleteJob(jobId: string): Promise<void>;
  putTask(task: TaskInstance): Promise<void>;
  /** Takes an observation agents repeat in every report into the copy now and into ZooKeeper with a later write (`flushDeferred`). */
  deferTask(task: TaskInstance, now: number): void;
  /** Removes some of a job's task records (a cron run that retention archived). */
  deleteTasks(jobId: string, indexes: readonly number[]): Promise<void>;
}

const MAX_PARALLEL_LOADS = 200;
/**
 * Stored records are never changed, only replaced: chunk encoding keeps each
 * recent record's JSON (chunks.ts). The test runner sets
 * TORCA_FREEZE_TASK_RECORDS=1, so the store freezes what it stores and code
 * that changes a record in place fails a test instead of leaving a stale text
 * to be written. Not otherwise: V8 keeps a frozen record in dictionary mode,
 * twice the memory (45 MB more for 100,000 records).
 */
const FREEZE_STORED_RECORDS = process.env.TORCA_FREEZE_TASK_RECORDS === "1";

/** Chunk writes in flight at once over all jobs: ZooKeeper handles many writes well in parallel, not thousands. */
const MAX_PARALLEL_WRITES = 8;

export class ZkStateStore extends EventEmitter<StateStoreEvents> implements StateStore {
  private readonly jobEntries = new Map<string, Entry<Job>>();
  private readonly jobTasks = new Map<string, JobTasks>();
  private readonly jobView = new Map<string, Job>();
  // Indexes kept with every change of a task record (setTaskEntry), so that the
  // primary's tick and each report touch the tasks concerned, not all of them.
  private readonly byNode = new TaskGroups();
  private readonly byStatus = new TaskGroups();
  private readonly revisions = new Map<string, number>();
  /** Each job's tasks counted by state (job statuses are derived from it every tick). */
  private readonly tallies = new Map<string, TaskTally>();
  /** Each job's tasks as `tasksOf` last sorted them, valid while the job's revision is unchanged: every tick reads every job's. */
  private readonly sortedTasks = new Map<string, { revision: number; tasks: readonly TaskInstance[] }>();
  private revisionCounter = 0;
  private readonly p: ZPaths;
  private authoritative = false;
  private needsResync = false;
  private inflight = 0;
  private drainWaiters: (() => void)[] = [];
  private readonly committer = new GroupCommitter<ChunkOp>((key, ops) => this.writeChunk(key, ops), MAX_PARALLEL_WRITES);
  /** Chunks whose copy holds deferred records ZooKeeper does not have yet: chunk key → when the first of them was taken. */
  private readonly deferred = new Map<string, number>();
  /** Per-index znodes whose chunk exists: left for the primary to delete. */
  private readonly legacyLeft: LegacyZnodes;

  constructor(private readonly zk: ZkSession, root: string, private readonly log?: Logger) {
    super();
    this.p = zpaths(root);
    this.legacyLeft = new LegacyZnodes(zk, this.p, (jobId) => this.jobTasks.get(jobId)?.chunks, log);
  }

  get jobs(): ReadonlyMap<string, Job> {
    return this.jobView;
  }

  tasksOf(jobId: string): readonly TaskInstance[] {
    const jt = this.jobTasks.get(jobId);
    if (!jt) return [];
    const revision = this.taskRevision(jobId);
    const cached = this.sortedTasks.get(jobId);
    if (cached?.revision === revision) return cached.tasks;
    // Frozen: a caller changing it would change every other caller's answer.
    const tasks = Object.freeze([...jt.records.values()].sort((a, b) => a.index - b.index));
    this.sortedTasks.set(jobId, { revision, tasks });
    return tasks;
  }

  /** The job's tasks counted by state. */
  taskTally(jobId: string): Readonly<TaskTally> {
    return this.tallies.get(jobId) ?? emptyTally();
  }

  private tallyFor(jobId: string, change: (n: TaskTally) => void): void {
    let n = this.tallies.get(jobId);
    if (!n) this.tallies.set(jobId, (n = emptyTally()));
    change(n);
    if (n.total === 0) this.tallies.delete(jobId);
  }

  task(jobId: string, index: number): TaskInstance | undefined {
    return this.jobTasks.get(jobId)?.records.get(index);
  }

  *allTasks(): Iterable<TaskInstance> {
    for (const jt of this.jobTasks.values()) yield* jt.records.values();
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
    return this.jobTasks.get(jobId)?.records.size ?? 0;
  }

  taskRevision(jobId: string): number {
    return this.revisions.get(jobId) ?? 0;
  }

  private jobTasksOf(jobId: string): JobTasks {
    let jt = this.jobTasks.get(jobId);
    if (!jt) this.jobTasks.set(jobId, (jt = { records: new Map(), chunks: new Map(), legacy: new Map() }));
    return jt;
  }

  /** The one place task records change, so the indexes never drift from them. */
  private setTaskEntry(m: Map<number, TaskInstance>, index: number, t: TaskInstance | undefined): void {
    const prev = m.get(index);
    if (prev) {
      this.byNode.remove(prev.nodeId, prev);
      this.byStatus.remove(`${prev.desired}:${prev.state}`, prev);
      this.tallyFor(prev.jobId, (n) => countTask(n, prev, -1));
    }
    const jobId = t?.jobId ?? prev?.jobId;
    if (jobId !== undefined) this.revisions.set(jobId, ++this.revisionCounter);
    if (!t) {
      m.delete(index);
      return;
    }
    this.tallyFor(t.jobId, (n) => countTask(n, t, 1));
    m.set(index, FREEZE_STORED_RECORDS ? Object.freeze(t) : t);
    this.byNode.add(t.nodeId, t);
    this.byStatus.add(`${t.desired}:${t.state}`, t);
  }

  /** Sets (or with undefined removes) one record and tells the listeners, when it differs from the copy's. */
  private applyRecord(jt: JobTasks, index: number, t: TaskInstance | undefined): void {
    const prev = jt.records.get(index);
    if (!t) {
      if (!prev) return;
      this.setTaskEntry(jt.records, index, undefined);
      this.emit("task", undefined, prev.id);
      return;
    }
    if (prev && sameJson(prev, t)) return;
    this.setTaskEntry(jt.records, index, t);
    this.emit("task", t, t.id);
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
   * reached the cache, then stop watching (we are the only writer from now on),
   * and move task records still in per-index znodes into chunks.
   */
  async becomeAuthoritative(): Promise<void> {
    await this.zk.sync(this.p.jobs);
    // Watch notifications are delivered before the sync reply; wait for the reads they started.
    await this.drained();
    await this.track(() => this.loadJobList());
    await this.drained();
    // A read given up on (while a backup, or just now) left part of the copy stale, and no watch will mend it once
    // authoritative: everything is read again, and a copy that still cannot be read whole is never acted on.
    if (this.needsResync) {
      this.needsResync = false;
      this.log?.warn("part of the state copy is stale (a read was given up); reading it all again before taking over");
      await this.track(() => this.resync());
      await this.drained();
      if (this.needsResync) throw new UnavailableError("the state in ZooKeeper could not be read whole; not taking over with a stale copy");
    }
    this.authoritative = true;
    await this.migrateLegacy();
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

  /** Re-reads every job, task list and chunk (re-arming their watches) after reads were given up. */
  private async resync(): Promise<void> {
    await this.loadJobList();
    for (const id of [...this.jobEntries.keys()]) {
      await this.loadJob(id);
      await this.loadTaskList(id);
      const jt = this.jobTasks.get(id);
      for (const k of [...(jt?.chunks.keys() ?? [])]) await this.loadChunk(id, k);
      for (const i of [...(jt?.legacy.keys() ?? [])]) await this.loadLegacy(id, i);
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
    const jt = this.jobTasks.get(id);
    if (jt) for (const i of [...jt.records.keys()]) this.setTaskEntry(jt.records, i, undefined);
    this.jobTasks.delete(id);
    this.sortedTasks.delete(id);
    for (const key of this.deferred.keys()) if (parseChunkKey(key).jobId === id) this.deferred.delete(key);
    this.legacyLeft.forget(id);
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
    const jt = this.jobTasksOf(jobId);
    const children = names.map(parseTasksChild);
    const present = new Set(children.flatMap((c) => (c.kind === "chunk" ? [c.k] : [])));
    const chunks = [...present].filter((k) => !jt.chunks.has(k));
    const legacy: number[] = [];
    for (const c of children) {
      if (c.kind !== "legacy") continue;
      // A chunk wins over the per-index znodes of its range (left over from a migration cut short).
      if (present.has(chunkOf(c.index))) this.legacyLeft.note(jobId);
      else if (!jt.legacy.has(c.index)) legacy.push(c.index);
    }
    await Promise.all([
      parallel(chunks, MAX_PARALLEL_LOADS, (k) => this.track(() => this.loadChunk(jobId, k))),
      parallel(legacy, MAX_PARALLEL_LOADS, (i) => this.track(() => this.loadLegacy(jobId, i))),
    ]);
  }

  /**
   * One watcher for every chunk and per-index task node, told the path: a
   * closure per watched node (re-made on each read) was the largest part of a
   * backup's heap with 100,000 per-index task nodes.
   */
  private readonly taskWatcher: Watcher = (_ev, path) => {
    const [job, tasks, name] = path.slice(this.p.jobs.length + 1).split("/");
    if (job === undefined || tasks !== "tasks" || name === undefined) return;
    const jobId = decodeURIComponent(job);
    const child = parseTasksChild(name);
    if (child.kind === "chunk") void this.track(() => this.loadChunk(jobId, child.k));
    else if (child.kind === "legacy") void this.track(() => this.loadLegacy(jobId, child.index));
  };

  private async loadChunk(jobId: string, k: number): Promise<void> {
    const r = await this.zk.getIfExists(this.p.taskChunk(jobId, k), this.authoritative ? undefined : this.taskWatcher);
    this.applyChunk(jobId, k, r, false);
  }

  /** A chunk as read (undefined: it does not exist) into the copy; unless `force`d, only a newer one than the copy's. */
  private applyChunk(jobId: string, k: number, r: { data: Buffer; stat: ZkStat } | undefined, force: boolean): void {
    const jt = this.jobTasks.get(jobId);
    if (!jt) return;
    const { first, end } = chunkRange(k);
    if (!r) {
      if (!jt.chunks.delete(k)) return;
      for (let i = first; i < end; i++) if (!jt.legacy.has(i)) this.applyRecord(jt, i, undefined);
      return;
    }
    const cur = jt.chunks.get(k);
    if (!force && cur?.mzxid !== undefined && r.stat.mzxid <= cur.mzxid) return;
    const records = decodeChunk(r.data, k, this.p.taskChunk(jobId, k));
    jt.chunks.set(k, { version: r.stat.version, mzxid: r.stat.mzxid });
    const next = new Map(records.map((t) => [t.index, t]));
    for (let i = first; i < end; i++) {
      if (jt.legacy.delete(i)) this.legacyLeft.note(jobId);
      this.applyRecord(jt, i, next.get(i));
    }
  }

  /** A task record of the layout before chunks: followed only while its chunk does not exist. */
  private async loadLegacy(jobId: string, index: number): Promise<void> {
    const chunkExists = () => this.jobTasks.get(jobId)?.chunks.has(chunkOf(index)) ?? false;
    if (chunkExists()) {
      this.legacyLeft.note(jobId);
      return;
    }
    const path = this.p.legacyTask(jobId, index);
    const r = await this.zk.getIfExists(path, this.authoritative ? undefined : this.taskWatcher);
    if (!r) {
      // Deleted by a migration whose chunk this copy has not read yet: the record moved, it is not gone.
      await this.loadChunk(jobId, chunkOf(index));
      const jt = this.jobTasks.get(jobId);
      if (jt && !chunkExists() && jt.legacy.delete(index)) this.applyRecord(jt, index, undefined);
      return;
    }
    const jt = this.jobTasks.get(jobId);
    if (!jt || chunkExists()) return;
    const known = jt.legacy.get(index);
    if (known === undefined || r.stat.version > known) {
      jt.legacy.set(index, r.stat.version);
      this.applyRecord(jt, index, readJson(TaskInstanceSchema, r.data, path));
    }
  }

  // ---- writes (primary only) ----

  async createJob(job: Job): Promise<void> {
    const path = this.p.job(job.id);
    // Retried through a connection loss (a ZooKeeper server failing over), so a submission is not refused for it.
    const jobCreated = this.zk.createRetrying(path, JSON.stringify(job));
    // Sent right behind the job's create, not after its reply (a session's requests apply in order): one round trip for both.
    // Harmless when the job's create fails; a missing tasks node is made by the first chunk write (createChunk).
    const tasksCreated = this.zk.createIfAbsent(this.p.tasks(job.id)).then(
      () => undefined,
      (e: unknown) => e,
    );
    try {
      await jobCreated;
    } catch (e) {
      await tasksCreated;
      if (isZkCode(e, ZK.NODEEXISTS)) {
        // Stored by an earlier attempt whose answer was lost: make the copy know it, so it runs.
        if (!this.jobEntries.has(job.id)) await this.refreshJob(job.id).catch(() => undefined);
        throw new ConflictError(`job ${job.id} already exists`, { jobId: job.id });
      }
      throw e;
    }
    const tasksError = await tasksCreated;
    if (tasksError) this.log?.warn({ job: job.id, err: tasksError }, "tasks node not created yet");
    this.jobEntries.set(job.id, { value: job, version: 0 });
    this.jobView.set(job.id, job);
    const stale = this.jobTasks.get(job.id);
    if (stale) for (const i of [...stale.records.keys()]) this.setTaskEntry(stale.records, i, undefined);
    this.jobTasks.set(job.id, { records: new Map(), chunks: new Map(), legacy: new Map() });
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
    const chunks = this.jobTasks.get(jobId)?.chunks;
    // Every child, chunks and per-index nodes alike, including those of a previous primary this copy never saw (none when a deletion cut short already removed the tasks node).
    const left = (await this.zk.exists(this.p.tasks(jobId))) ? await this.zk.children(this.p.tasks(jobId)) : [];
    await parallel(left, MAX_PARALLEL_WRITES, async (name) => {
      const child = parseTasksChild(name);
      const version = child.kind === "chunk" ? chunks?.get(child.k)?.version : undefined;
      await this.zk.delete(`${this.p.tasks(jobId)}/${name}`, version ?? -1);
    });
    await this.zk.delete(this.p.tasks(jobId));
    const cur = this.jobEntries.get(jobId);
    await this.zk.delete(this.p.job(jobId), cur?.version ?? -1);
    this.forgetJob(jobId);
  }

  async deleteTasks(jobId: string, indexes: readonly number[]): Promise<void> {
    const jt = this.jobTasks.get(jobId);
    const known = indexes.filter((i) => jt?.records.has(i));
    await Promise.all(known.map((i) => this.committer.submit(chunkKey(jobId, chunkOf(i)), { remove: i })));
  }

  /** Resolves once a write of the task's chunk carrying this record succeeded; ConflictError when the chunk changed under this copy. */
  putTask(task: TaskInstance): Promise<void> {
    const fitted = fitRecord(task);
    if (fitted !== task) this.log?.warn({ task: task.id }, "task record too large for its chunk: long texts cut and oldest events dropped");
    return this.committer.submit(chunkKey(task.jobId, chunkOf(task.index)), { put: fitted });
  }

  /**
   * An observation agents repeat in every report (a task running, its ports,
   * its health) goes into the copy at once and into ZooKeeper with its
   * chunk's next write, which `flushDeferred` makes at the latest. Nothing
   * waits for it to be durable: it decides nothing that a later report does
   * not decide again, and a primary that dies first loses only what the
   * agent's next report to the next primary records again. Until then the
   * backups' copies show the task's previous record.
   *
   * A chunk with a write queued or in flight takes it into that write
   * instead, so no write under way can land an older record over it; so does
   * a range still read from per-index znodes (the migration writes it).
   */
  deferTask(task: TaskInstance, now: number): void {
    const k = chunkOf(task.index);
    const key = chunkKey(task.jobId, k);
    const jt = this.jobTasks.get(task.jobId);
    if (this.committer.busy(key) || !jt?.chunks.has(k) || jt.legacy.size > 0) {
      // Errors reach the writes' own callers; this record is reported again.
      void this.putTask(task).catch(() => undefined);
      return;
    }
    this.applyRecord(jt, task.index, fitRecord(task));
    if (!this.deferred.has(key)) this.deferred.set(key, now);
  }

  /** Writes the chunks holding records deferred at or before `before`; resolves when those writes settled (failures are the next flush's). */
  async flushDeferred(before: number): Promise<{ chunks: number; failed: number }> {
    const due: string[] = [];
    for (const [key, since] of this.deferred) if (since <= before && !this.committer.busy(key)) due.push(key);
    const results = await Promise.allSettled(due.map((key) => this.committer.submit(key, { rewrite: true })));
    return { chunks: due.length, failed: results.filter((r) => r.status === "rejected").length };
  }

  /** Deferred records waiting for their chunk's write. */
  get deferredChunks(): number {
    return this.deferred.size;
  }

  /**
   * One write of a chunk (group-committed): the copy's records of its range
   * with `ops` applied, by compare-and-set against the version last seen;
   * created when absent, deleted when left empty. The copy changes only once
   * the write succeeded. Records of the range still read from per-index
   * znodes go into the chunk too, which from then on wins over those znodes.
   */
  private async writeChunk(key: string, ops: readonly ChunkOp[]): Promise<void> {
    const { jobId, k } = parseChunkKey(key);
    const jt = this.jobTasksOf(jobId);
    const { first, end } = chunkRange(k);
    const next = new Map<number, TaskInstance>();
    for (let i = first; i < end; i++) {
      const t = jt.records.get(i);
      if (t) next.set(i, t);
    }
    const changed = new Map<number, TaskInstance | undefined>();
    for (const op of ops) {
      if ("put" in op) {
        next.set(op.put.index, op.put);
        changed.set(op.put.index, op.put);
      } else if ("remove" in op) {
        next.delete(op.remove);
        changed.set(op.remove, undefined);
      }
    }
    const path = this.p.taskChunk(jobId, k);
    const meta = jt.chunks.get(k);
    let written: ChunkMeta | undefined;
    try {
      if (next.size === 0) {
        if (meta) await this.casDelete(path, meta.version);
      } else if (!meta) {
        await this.createChunk(jobId, path, encodeChunk(next.values(), path));
        written = { version: 0 };
      } else {
        const stat = await this.casSet(path, encodeChunk(next.values(), path), meta.version);
        written = { version: stat.version, mzxid: stat.mzxid };
      }
    } catch (e) {
      if (isZkCode(e, ZK.NODEEXISTS)) {
        // Our copy missed it (written just before we took over): learn it, let the caller retry.
        this.deferred.delete(key);
        await this.refreshChunk(jobId, k);
        throw new ConflictError(`${path} exists in ZooKeeper but not in this copy; reloaded it`, { path });
      }
      if (e instanceof ConflictError) {
        // The copy becomes ZooKeeper's again: deferred records go, and their agents report them again.
        this.deferred.delete(key);
        await this.refreshChunk(jobId, k);
      }
      throw e;
    }
    // Deferred records are taken only while no write of the chunk is queued or in flight, so this write carried them all.
    this.deferred.delete(key);
    if (written) jt.chunks.set(k, written);
    else jt.chunks.delete(k);
    for (let i = first; i < end; i++) if (jt.legacy.delete(i)) this.legacyLeft.note(jobId);
    for (const [i, t] of changed) {
      const prev = jt.records.get(i);
      this.setTaskEntry(jt.records, i, t);
      if (t) this.emit("task", t, t.id);
      else if (prev) this.emit("task", undefined, prev.id);
    }
    if (this.authoritative) this.legacyLeft.clean();
  }

  /**
   * A primary that died between creating a job's node and its tasks node left
   * the job without the latter (the two creates are not one transaction): make
   * it here, or the job's tasks could never be written.
   */
  private async createChunk(jobId: string, path: string, data: string): Promise<void> {
    try {
      await this.zk.create(path, data);
    } catch (e) {
      if (!isZkCode(e, ZK.NONODE) || !this.jobEntries.has(jobId)) throw e;
      await this.zk.createIfAbsent(this.p.tasks(jobId));
      this.log?.warn({ job: jobId }, "job had no tasks node (its creation was cut short); created it");
      await this.zk.create(path, data);
    }
  }

  // ---- upgrade from one znode per task ----

  /**
   * Writes every range of records still read from per-index znodes into its
   * chunk, then deletes those znodes in the background (a chunk wins over
   * them, so they are harmless meanwhile). A range that fails stays readable
   * where it is and moves with the next write of its chunk.
   */
  private async migrateLegacy(): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const [jobId, jt] of this.jobTasks) {
      for (const k of new Set([...jt.legacy.keys()].map(chunkOf))) writes.push(this.committer.submit(chunkKey(jobId, k), { rewrite: true }));
    }
    if (writes.length > 0) {
      const results = await Promise.allSettled(writes);
      const failed = results.filter((r) => r.status === "rejected").length;
      this.log?.info({ chunks: writes.length, failed }, "task records moved from per-index znodes into chunks");
    }
    this.legacyLeft.clean();
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

  /** Re-reads one chunk unconditionally (after a conflict showed our copy is behind). */
  private async refreshChunk(jobId: string, k: number): Promise<void> {
    const r = await this.zk.getIfExists(this.p.taskChunk(jobId, k));
    this.jobTasksOf(jobId);
    this.applyChunk(jobId, k, r, true);
    this.log?.warn({ job: jobId, chunk: k, version: r?.stat.version }, "task chunk copy was behind ZooKeeper; reloaded");
  }

  private async casSet(path: string, data: string, version: number) {
    try {
      return await this.zk.set(path, data, version);
    } catch (e) {
      throw asConflict(e, path);
    }
  }

  private async casDelete(path: string, version: number): Promise<void> {
    try {
      await this.zk.delete(path, version);
    } catch (e) {
      throw asConflict(e, path);
    }
  }
}

function asConflict(e: unknown, path: string): unknown {
  if (e instanceof CoordinationError && e.zkCode === ZK.BADVERSION) return new ConflictError(`${path} changed since this copy read it`, { path });
  return e;
}

/** The group committer's key of a chunk: k first, as a job id may hold any character. */
function chunkKey(jobId: string, k: number): string {
  return `${k}/${jobId}`;
}

function parseChunkKey(key: string): { jobId: string; k: number } {
  const slash = key.indexOf("/");
  return { k: Number(key.slice(0, slash)), jobId: key.slice(slash + 1) };
}
