import type { AlertEvent, Recipients } from "../alerting/types.js";
import type { ExitRecord } from "./supervisor.js";

/**
 * The alert for a crash-looping daemon, ready for Alerter.raise(). The key
 * carries the time of the first exit of the episode, so one episode alerts
 * once and a later episode (after a stable run) alerts again.
 */
export function crashLoopAlert(host: string, daemon: string, exits: readonly ExitRecord[], recipients: Recipients, at = Date.now()): AlertEvent {
  const first = exits[0]?.at ?? at;
  const last = exits[exits.length - 1];
  const how = last ? (last.error ?? (last.statusUnknown ? "an exit whose status is unknown (the daemon was adopted from an earlier master)" : last.signal ? `killed by ${last.signal}` : `exit code ${last.code}`)) : "unknown";
  const spanS = Math.max(1, Math.round(((last?.at ?? at) - first) / 1000));
  return {
    key: `daemon-crashloop:${host}:${daemon}:${first}`,
    kind: "daemon-crashloop",
    severity: "critical",
    subject: `${daemon} on ${host} is crash-looping (${exits.length} exits in ${spanS}s)`,
    text: `The torca master on ${host} restarted ${daemon} ${exits.length} times in ${spanS}s; the last run ended with ${how}. It keeps restarting it with backoff. Check \`journalctl -u torca-master\` on ${host}.`,
    nodeId: host,
    at,
    recipients,
  };
}
