import { ConflictError, CoordinationError } from "../../common/errors.js";
import { readJson, readJsonIfValid } from "../../common/json.js";
import type { Logger } from "../../common/logger.js";
import { zpaths, type ZPaths } from "../../coord/paths.js";
import { ZK, type ZkSession } from "../../coord/zk.js";
import { WorkflowRecordSchema, workflowIdOf, type WorkflowRecord } from "./types.js";

export interface StoredWorkflow {
  record: WorkflowRecord;
  /** The znode's version: a write names it, so a stale writer is refused. */
  version: number;
}

/** What the primary's workflow phase needs of the store (a fake in unit tests). */
export interface WorkflowRecords {
  list(): Promise<StoredWorkflow[]>;
  create(record: WorkflowRecord): Promise<StoredWorkflow>;
  update(record: WorkflowRecord, version: number): Promise<StoredWorkflow>;
  remove(id: string, version: number): Promise<void>;
}

/**
 * Workflows in ZooKeeper: one znode per workflow, /workflows/<id>, holding
 * the definition and every node's progress (types.ts WorkflowRecord). Only
 * the primary writes, each write a compare-and-set on the version it read;
 * every manager reads (status, list, pages).
 */
export class WorkflowStore implements WorkflowRecords {
  private readonly p: ZPaths;

  constructor(
    private readonly zk: ZkSession,
    root: string,
    private readonly log: Logger,
  ) {
    this.p = zpaths(root);
  }

  async get(id: string): Promise<StoredWorkflow | undefined> {
    const path = this.p.workflow(id);
    const r = await this.zk.getIfExists(path);
    return r ? { record: readJson(WorkflowRecordSchema, r.data, path), version: r.stat.version } : undefined;
  }

  /** Every workflow (an unreadable record is skipped with a warning rather than hiding the others). */
  async list(): Promise<StoredWorkflow[]> {
    const ids = await this.zk.children(this.p.workflows);
    const out: StoredWorkflow[] = [];
    for (const child of ids.sort()) {
      const path = `${this.p.workflows}/${child}`;
      const r = await this.zk.getIfExists(path);
      const record = r && readJsonIfValid(WorkflowRecordSchema, r.data, path, (e) => this.log.warn({ path, err: e }, "skipping an unreadable workflow record"));
      if (r && record) out.push({ record, version: r.stat.version });
    }
    return out;
  }

  /** Creates the workflow's znode; ConflictError when one exists. */
  async create(record: WorkflowRecord): Promise<StoredWorkflow> {
    await this.zk.ensurePath(this.p.workflows);
    const id = workflowIdOf(record.def.namespace, record.def.name);
    if (!(await this.zk.createIfAbsent(this.p.workflow(id), JSON.stringify(record)))) throw new ConflictError(`workflow ${id} exists`, { workflow: id });
    return { record, version: 0 };
  }

  /** Compare-and-set against `version`; ConflictError when someone else wrote since. */
  async update(record: WorkflowRecord, version: number): Promise<StoredWorkflow> {
    const id = workflowIdOf(record.def.namespace, record.def.name);
    try {
      const stat = await this.zk.set(this.p.workflow(id), JSON.stringify(record), version);
      return { record, version: stat.version };
    } catch (e) {
      if (e instanceof CoordinationError && (e.zkCode === ZK.BADVERSION || e.zkCode === ZK.NONODE)) throw new ConflictError(`workflow ${id} changed since this copy read it`, { workflow: id });
      throw e;
    }
  }

  async remove(id: string, version: number): Promise<void> {
    await this.zk.delete(this.p.workflow(id), version);
  }
}
