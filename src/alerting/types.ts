/**
 * Shapes of the alerting pipeline: an event raised by the manager, the message
 * rendered from it, the notifier that carries it, and the delivery record kept
 * for `GET /v1/alerts`.
 */
import type { AlertKind } from "../common/types.js";

/** The kinds live with the shared types: the config schema names them in its alert routes. */
export type { AlertKind };

export type AlertSeverity = "critical" | "warning" | "info";

export type Channel = "email" | "sms";

export interface Recipients {
  email: string[];
  sms: string[];
}

export interface AlertEvent {
  /**
   * Stable incident key, unique per incident: the same key is alerted at most
   * once, ever (e.g. "task-failed:web/0:attempt-3", "node-lost:agent-1:<lostAt>").
   * A condition that should alert again must get a new key.
   */
  key: string;
  kind: AlertKind;
  severity: AlertSeverity;
  subject: string;
  text: string;
  jobId?: string;
  taskId?: string;
  nodeId?: string;
  /** URL of the task/job/node status page. */
  link?: string;
  /** When the incident happened (ms since epoch). */
  at: number;
  /** Recipients from the job's `notify` (see router.recipientsForJobs); cluster routes are added by the Alerter. */
  recipients: Recipients;
}

/** One rendered message; `short` is the SMS form. */
export interface AlertMessage {
  subject: string;
  text: string;
  html?: string;
  short: string;
}

export interface Notifier {
  readonly channel: Channel;
  send(to: string, msg: AlertMessage): Promise<void>;
  /** Releases connections (SMTP pool, sockets). */
  close?(): Promise<void>;
}

/**
 * pending: queued or being sent; sent: the channel accepted it; retrying: an
 * attempt failed and another is scheduled; failed: attempts exhausted;
 * suppressed: dropped by the per-recipient rate limit; collapsed: held during
 * a storm and reported in a summary message instead.
 */
export type DeliveryStatus = "pending" | "sent" | "failed" | "retrying" | "suppressed" | "collapsed";

export interface DeliveryRecord {
  /** Sortable by creation: zero-padded time, then a sequence number and an instance tag. */
  id: string;
  /** Incident key; summaries use "summary:<channel>:<to>:<windowStart>". */
  key: string;
  kind: AlertKind | "storm-summary";
  severity: AlertSeverity;
  channel: Channel;
  to: string;
  status: DeliveryStatus;
  attempts: number;
  lastError?: string;
  createdAt: number;
  updatedAt: number;
  sentAt?: number;
  nextAttemptAt?: number;
  /** For summaries: how many held alerts the summary stands for. */
  collapsedCount?: number;
  /** The message itself, so that a new primary can resume unfinished deliveries. */
  message: AlertMessage;
}
