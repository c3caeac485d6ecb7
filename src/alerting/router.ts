import type { AlertOn, NotifySpec } from "../common/types.js";
import type { AlertKind, Channel, Recipients } from "./types.js";

/**
 * Routing: who hears about an alert. Pure functions.
 *
 * Two sources: the `notify` block of the jobs an incident concerns (the
 * manager passes every such job: for node-lost, each job with a task on the
 * node), and cluster-wide routes from the manager config.
 */

/** A cluster-wide route from config: kinds it matches ("*" for all) and who gets them. */
export interface ClusterRoute {
  kinds: AlertKind[] | "*";
  email: string[];
  sms: string[];
}

/** What each `notify.on` value of a task file subscribes to. */
export const KINDS_FOR_ALERT_ON: Readonly<Record<AlertOn, readonly AlertKind[]>> = {
  failed: ["task-failed"],
  // A task's node disappearing is how a task gets lost, so the job hears of both.
  lost: ["task-lost", "node-lost"],
  "oom-killed": ["task-oom-killed"],
  unhealthy: ["service-unhealthy"],
  completed: ["job-completed"],
  "cron-failed": ["cron-failed", "cron-missed"],
};

export function kindsForAlertOn(on: readonly AlertOn[]): Set<AlertKind> {
  const out = new Set<AlertKind>();
  for (const o of on) for (const k of KINDS_FOR_ALERT_ON[o] ?? []) out.add(k);
  return out;
}

/** Recipients from the `notify` blocks of the jobs concerned, for one alert kind. */
export function recipientsForJobs(kind: AlertKind, notifies: ReadonlyArray<NotifySpec | undefined>): Recipients {
  const email: string[] = [];
  const sms: string[] = [];
  for (const n of notifies) {
    if (!n || !kindsForAlertOn(n.on).has(kind)) continue;
    email.push(...n.email);
    sms.push(...n.sms);
  }
  return { email: uniqueAddresses(email), sms: uniqueAddresses(sms) };
}

/** Recipients from the cluster-wide routes matching a kind. */
export function recipientsForRoutes(kind: AlertKind, routes: readonly ClusterRoute[]): Recipients {
  const email: string[] = [];
  const sms: string[] = [];
  for (const r of routes) {
    if (r.kinds !== "*" && !r.kinds.includes(kind)) continue;
    email.push(...r.email);
    sms.push(...r.sms);
  }
  return { email: uniqueAddresses(email), sms: uniqueAddresses(sms) };
}

export interface Target {
  channel: Channel;
  to: string;
}

/** The final, de-duplicated list of (channel, address) an event goes to. */
export function resolveTargets(kind: AlertKind, eventRecipients: Recipients, routes: readonly ClusterRoute[]): Target[] {
  const fromRoutes = recipientsForRoutes(kind, routes);
  const email = uniqueAddresses([...eventRecipients.email, ...fromRoutes.email]);
  const sms = uniqueAddresses([...eventRecipients.sms, ...fromRoutes.sms]);
  return [...email.map((to) => ({ channel: "email" as const, to })), ...sms.map((to) => ({ channel: "sms" as const, to }))];
}

/**
 * Trims and de-duplicates, keeping first-seen order. Email addresses compare
 * case-insensitively (domains are case-insensitive and in practice so are
 * local parts), but are sent as first written.
 */
export function uniqueAddresses(list: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const raw of list) {
    const a = raw.trim();
    if (!a) continue;
    const k = a.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(a);
  }
  return out;
}

/** The identity used for per-recipient rate limits and storm windows. */
export function targetKey(t: Target): string {
  return `${t.channel}:${t.to.toLowerCase()}`;
}
