import type { Clock } from "../common/clock.js";
import type { Config } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import { Alerter, type RetryConfig } from "./alerter.js";
import { EmailNotifier, type EmailConfig } from "./email.js";
import type { AlertLedger } from "./ledger.js";
import type { PolicyConfig } from "./policy.js";
import type { ClusterRoute } from "./router.js";
import { SmsNotifier, type SmsConfig } from "./sms.js";
import type { DeliveryRecord, Notifier } from "./types.js";

export * from "./types.js";
export { Alerter, type AlerterOptions, type RaiseResult, type RetryConfig } from "./alerter.js";
export { EmailNotifier, type EmailConfig } from "./email.js";
export { SmsNotifier, DEFAULT_SMS_BODY, renderTemplate, type SmsConfig } from "./sms.js";
export { KvAlertLedger, MemoryAlertLedger, claimNodeName, type AlertLedger, type LedgerKV } from "./ledger.js";
export { AlertPolicy, describeKindCounts, retryDelay, type PolicyConfig, type StormSummary, type Admission } from "./policy.js";
export { KINDS_FOR_ALERT_ON, kindsForAlertOn, recipientsForJobs, recipientsForRoutes, resolveTargets, type ClusterRoute, type Target } from "./router.js";
export { formatAlert, formatStormSummary, escapeHtml, truncateChars, SMS_MAX_CHARS } from "./message.js";

/**
 * The manager config section `alerting` (all durations already in ms, all
 * optional: with neither email nor sms configured, alerts are only recorded).
 */
export interface AlertingConfig {
  email?: EmailConfig;
  sms?: SmsConfig;
  routes?: ClusterRoute[];
  dedupWindowMs?: number;
  rateLimit?: PolicyConfig["rateLimit"];
  storm?: PolicyConfig["storm"];
  retry?: Partial<RetryConfig>;
}

export function createNotifiers(config: AlertingConfig): Notifier[] {
  const out: Notifier[] = [];
  if (config.email) out.push(new EmailNotifier(config.email));
  if (config.sms) out.push(new SmsNotifier(config.sms));
  return out;
}

export function createAlerter(
  config: AlertingConfig,
  ledger: AlertLedger,
  extra: { clock?: Clock; logger?: Logger; onDelivery?: (r: DeliveryRecord) => void; instanceId?: string } = {},
): Alerter {
  return new Alerter({
    ledger,
    notifiers: createNotifiers(config),
    routes: config.routes,
    policy: { dedupWindowMs: config.dedupWindowMs, rateLimit: config.rateLimit, storm: config.storm },
    retry: config.retry,
    ...extra,
  });
}

/** The config section (schema units) → what createAlerter takes (ms). */
export function alertingConfigFrom(a: Config["manager"]["alerting"]): AlertingConfig {
  return {
    ...(a.smtp
      ? {
          email: {
            host: a.smtp.host,
            port: a.smtp.port,
            secure: a.smtp.secure,
            requireTLS: a.smtp.requireTLS,
            ...(a.smtp.auth ? { auth: a.smtp.auth } : {}),
            from: a.smtp.from,
            timeoutMs: a.smtp.timeout,
          },
        }
      : {}),
    ...(a.sms ? { sms: { url: a.sms.url, method: a.sms.method, headers: a.sms.headers, body: a.sms.body, timeoutMs: a.sms.timeout, retries: a.sms.retries } } : {}),
    routes: a.routes.map((r) => ({ kinds: r.kinds, email: r.email, sms: r.sms })),
    dedupWindowMs: a.dedupWindow,
    rateLimit: { capacity: a.ratePerRecipient, refillMs: a.rateWindow },
    storm: { threshold: a.stormThreshold, windowMs: a.stormWindow },
    retry: { attempts: a.retry.attempts, initialDelayMs: a.retry.initialDelay, factor: a.retry.factor, maxDelayMs: a.retry.maxDelay },
  };
}
