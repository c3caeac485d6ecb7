import type { Logger } from "../common/logger.js";
import { ALERT_KINDS, type Job, type NotifySpec, type TaskInstance } from "../common/types.js";
import type { LeaderInfo } from "../coord/election.js";
import type { StateStore } from "../coord/state-store.js";
import { isZkCode, ZK, type ZkSession } from "../coord/zk.js";
import type { EventBus } from "./events.js";
import type { AlertSink } from "./primary/primary.js";
import type { Alerter } from "../alerting/alerter.js";
import { createAlerter, type AlertingConfig } from "../alerting/index.js";
import { KvAlertLedger, type LedgerKV } from "../alerting/ledger.js";
import { recipientsForJobs } from "../alerting/router.js";
import type { AlertEvent, AlertKind, AlertSeverity, DeliveryRecord, Recipients } from "../alerting/types.js";

/**
 * How the manager uses the alerting package (src/alerting): one Alerter per primary term,
 * its ledger over that term's ZooKeeper session (so a claim is a write of the
 * fenced session: once the session has expired, the old primary can claim
 * nothing), and the Primary's AlertSink turned into AlertEvents with
 * recipients taken from the `notify` blocks of the jobs concerned.
 */

/** The ledger's KV over one ZooKeeper session: every write fails once that session is gone. */
export function zkLedgerKV(zk: ZkSession): LedgerKV {
  return {
    createIfAbsent: (path, data) => zk.createIfAbsent(path, data),
    async set(path, data) {
      try {
        await zk.set(path, data);
      } catch (e) {
        if (!isZkCode(e, ZK.NONODE)) throw e;
        // First write of this record; if another write created it meanwhile, overwrite as asked.
        if (!(await zk.createIfAbsent(path, data))) await zk.set(path, data);
      }
    },
    get: async (path) => (await zk.getIfExists(path))?.data,
    children: (path) => zk.children(path),
    remove: (path) => zk.delete(path),
  };
}

/**
 * Delivery history read without writing (backups serve `GET /v1/alerts` too,
 * and only the primary writes): the KvAlertLedger layout, newest first.
 */
export async function readAlertHistory(zk: ZkSession, root: string, limit: number): Promise<DeliveryRecord[]> {
  const dir = `${root}/alert-deliveries`;
  const names = (await zk.children(dir)).sort().reverse().slice(0, Math.max(0, limit));
  const out: DeliveryRecord[] = [];
  for (const name of names) {
    const r = await zk.getIfExists(`${dir}/${name}`);
    if (!r) continue;
    try {
      out.push(JSON.parse(r.data.toString("utf8")) as DeliveryRecord);
    } catch {
      // Same as KvAlertLedger.list: one bad record does not hide the others.
    }
  }
  return out;
}

const SEVERITY: Record<AlertKind, AlertSeverity> = {
  "task-failed": "critical",
  "task-lost": "warning",
  "task-oom-killed": "warning",
  "service-unhealthy": "warning",
  "node-lost": "critical",
  "node-back": "info",
  "migration-held": "critical",
  "manager-failover": "warning",
  "cron-failed": "critical",
  "cron-missed": "warning",
  "daemon-crashloop": "critical",
  "job-completed": "info",
  "package-corrupt": "critical",
};

const TITLE: Record<AlertKind, string> = {
  "task-failed": "task failed",
  "task-lost": "task lost",
  "task-oom-killed": "task OOM-killed",
  "service-unhealthy": "service unhealthy",
  "node-lost": "node lost",
  "node-back": "node back",
  "migration-held": "migrations held",
  "manager-failover": "manager failover",
  "cron-failed": "cron run failed",
  "cron-missed": "cron run missed",
  "daemon-crashloop": "daemon crash-looping",
  "job-completed": "job completed",
  "package-corrupt": "corrupted package blob served",
};

function isAlertKind(kind: string): kind is AlertKind {
  return (ALERT_KINDS as readonly string[]).includes(kind);
}

export interface SinkContext {
  store: StateStore;
  /** Base URL of this manager's status pages. */
  managerUrl: string;
  now?: () => number;
}

type SinkData = Parameters<AlertSink>[2];

/** Everyone who asked to hear about `kind` for a task of any job running on `nodeId`. */
function recipientsForNode(kind: AlertKind, nodeId: string, store: StateStore, extra: Job | undefined): Recipients {
  const notifies: (NotifySpec | undefined)[] = extra ? [extra.spec.notify] : [];
  const seen = new Set<string>(extra ? [extra.id] : []);
  for (const t of store.allTasks()) {
    if (t.nodeId !== nodeId || (t.state !== "dispatched" && t.state !== "running") || seen.has(t.jobId)) continue;
    seen.add(t.jobId);
    notifies.push(store.jobs.get(t.jobId)?.spec.notify);
  }
  return recipientsForJobs(kind, notifies);
}

function describeExit(t: TaskInstance | undefined): string[] {
  if (!t) return [];
  const lines = [`Attempt: ${t.attempt}`];
  if (t.exit) lines.push(`Exit: ${t.exit.exitCode !== null ? `code ${t.exit.exitCode}` : t.exit.signal ? `signal ${t.exit.signal}` : "unknown"}${t.exit.oomKilled ? " (OOM-killed)" : ""}; ${t.exit.reason}`);
  return lines;
}

/** Pure: one Primary sink call → the AlertEvent to raise (undefined for a kind alerting does not know). */
export function alertEventFor(kind: string, key: string, data: SinkData, ctx: SinkContext): AlertEvent | undefined {
  if (!isAlertKind(kind)) return undefined;
  const { job, task, node } = data;
  const jobId = job?.id ?? task?.jobId;
  const nodeId = node?.id ?? task?.nodeId;
  const base = ctx.managerUrl.replace(/\/+$/, "");
  const link = task ? `${base}/tasks/${encodeURIComponent(task.jobId)}/${task.index}` : jobId ? `${base}/jobs/${encodeURIComponent(jobId)}` : base;
  const about = task ? `${task.id}${nodeId ? ` on ${nodeId}` : ""}` : node ? `${node.id} (${node.host})` : (jobId ?? "");
  const recipients = kind === "node-lost" && node ? recipientsForNode(kind, node.id, ctx.store, job) : recipientsForJobs(kind, [job?.spec.notify]);
  return {
    key,
    kind,
    severity: SEVERITY[kind],
    subject: `${TITLE[kind]}: ${about}`,
    text: [data.text, ...describeExit(task)].join("\n"),
    ...(jobId ? { jobId } : {}),
    ...(task ? { taskId: task.id } : {}),
    ...(nodeId ? { nodeId } : {}),
    link,
    at: (ctx.now ?? Date.now)(),
    recipients,
  };
}

/** A new primary took over from another one; reaches people through cluster routes only. */
export function failoverEvent(me: { id: string; url: string }, info: LeaderInfo, previous: LeaderInfo | undefined): AlertEvent {
  const before = previous && previous.epoch < info.epoch && previous.id !== me.id ? ` from ${previous.id} (epoch ${previous.epoch})` : "";
  return {
    key: `manager-failover:${info.epoch}`,
    kind: "manager-failover",
    severity: SEVERITY["manager-failover"],
    subject: `manager failover: ${me.id} is primary (epoch ${info.epoch})`,
    text: `Manager ${me.id} took over as primary${before} at epoch ${info.epoch}. Running tasks are reconciled from agent reports; check \`torca nodes\` and \`torca jobs\`.`,
    link: me.url,
    at: info.since,
    recipients: { email: [], sms: [] },
  };
}

export interface TermAlertingOptions {
  zk: ZkSession;
  root: string;
  config: AlertingConfig;
  store: StateStore;
  manager: { id: string; url: string };
  epoch: number;
  bus?: EventBus;
  logger: Logger;
  /** Called after every change of a delivery record, besides its publication on the bus (the manager's metrics). */
  onDelivery?: (record: DeliveryRecord) => void;
}

const PRUNE_AFTER_MS = 7 * 24 * 3_600_000;
const PRUNE_EVERY_MS = 24 * 3_600_000;
const FIRST_PRUNE_MS = 60_000;

/** The alerting of one primary term: create when elected, close() when the term ends. */
export class TermAlerting {
  readonly alerter: Alerter;
  private readonly ledger: KvAlertLedger;
  private readonly log: Logger;
  private pruneTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: TermAlertingOptions) {
    this.log = o.logger;
    this.ledger = new KvAlertLedger(zkLedgerKV(o.zk), { root: o.root });
    this.alerter = createAlerter(o.config, this.ledger, {
      logger: o.logger,
      // Record ids carry who wrote them; the epoch keeps a restarted manager's ids apart.
      instanceId: `${o.manager.id}-e${o.epoch}`,
      onDelivery: (rec) => {
        o.bus?.publish("alert", rec.id, rec);
        o.onDelivery?.(rec);
      },
    });
  }

  /** Resumes deliveries a previous primary left unfinished, and starts the daily prune of old ledger entries. */
  async start(): Promise<void> {
    const resumed = await this.alerter.resume();
    if (resumed > 0) this.log.info({ resumed }, "resumed unfinished alert deliveries");
    const prune = () => {
      this.pruneTimer = setTimeout(() => {
        if (this.closed) return;
        this.ledger
          .prune(Date.now() - PRUNE_AFTER_MS)
          .then((n) => n > 0 && this.log.info({ removed: n }, "pruned old alert ledger entries"))
          .catch((e: unknown) => this.log.warn({ err: e }, "alert ledger prune failed"))
          .finally(() => {
            if (!this.closed) prune();
          });
      }, this.pruneTimer ? PRUNE_EVERY_MS : FIRST_PRUNE_MS);
      this.pruneTimer.unref();
    };
    if (!this.closed) prune();
  }

  /** The Primary's AlertSink: fire and forget (the Primary must not wait on SMTP), failures logged. */
  readonly sink: AlertSink = (kind, key, data) => {
    const event = alertEventFor(kind, key, data, { store: this.o.store, managerUrl: this.o.manager.url });
    if (!event) {
      this.log.warn({ kind, key }, "alert of unknown kind dropped");
      return;
    }
    this.raise(event);
  };

  raise(event: AlertEvent): void {
    this.alerter.raise(event).then(
      (r) => this.log.info({ alert: event.key, result: r.status }, "alert raised"),
      (e: unknown) => this.log.error({ err: e, alert: event.key }, "alert could not be raised"),
    );
  }

  raiseFailover(info: LeaderInfo, previous: LeaderInfo | undefined): void {
    this.raise(failoverEvent(this.o.manager, info, previous));
  }

  history(limit: number): Promise<DeliveryRecord[]> {
    return this.alerter.history(limit);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    await this.alerter.close();
  }
}
