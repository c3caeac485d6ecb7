/** `notify:` who is told about which events of the job. */
import type { AlertOn, NotifySpec } from "../../types.js";
import type { Checker } from "../checks.js";
import { describe } from "../describe.js";
import type { Path } from "../issues.js";
import { SCHEMA_KEYS, TASKFILE_DEFAULTS } from "../schema.js";

const ALERTS: readonly AlertOn[] = ["failed", "lost", "oom-killed", "unhealthy", "completed", "cron-failed"];
// Deliberately loose: the mail server is the judge of deliverability; this only catches obvious slips.
const EMAIL_RE = /^[^\s@,;<>]+@[^\s@,;<>]+\.[^\s@,;<>]+$/;
const SMS_RE = /^\+?[0-9]{6,15}$/;

export function checkNotify(c: Checker, v: unknown, path: Path): NotifySpec | undefined {
  const s = c.section(v, path, SCHEMA_KEYS.notify);
  if (!s) return undefined;
  const n: NotifySpec = { email: [], sms: [], on: [...TASKFILE_DEFAULTS.notifyOn] };
  const emailV = s.get("email");
  if (emailV !== undefined) {
    const items = c.list(emailV, s.at("email"), `[ops@example.com]`);
    items?.forEach((item, i) => {
      const e = c.string(item, [...s.at("email"), i]);
      if (e !== undefined && !EMAIL_RE.test(e)) c.add([...s.at("email"), i], `${describe(e)} is not an email address`);
      else if (e !== undefined) n.email.push(e);
    });
  }
  const smsV = s.get("sms");
  if (smsV !== undefined) {
    const items = c.list(smsV, s.at("sms"), `["+15550100"]`);
    items?.forEach((item, i) => {
      const at = [...s.at("sms"), i];
      // Unquoted numbers in YAML arrive as numbers; a leading + needs quotes, so accept both.
      const num = typeof item === "number" ? c.scalarString(item, at) : c.string(item, at);
      if (num !== undefined && !SMS_RE.test(num)) c.add(at, `${describe(num)} is not a phone number (digits only, optional leading +, 6-15 digits)`);
      else if (num !== undefined) n.sms.push(num);
    });
  }
  const onV = s.get("on");
  if (onV !== undefined) {
    const items = c.list(onV, s.at("on"), `[failed, lost]`);
    if (items) {
      n.on = [];
      items.forEach((item, i) => {
        const a = c.oneOf(item, [...s.at("on"), i], ALERTS);
        if (a !== undefined && !n.on.includes(a)) n.on.push(a);
      });
      if (items.length === 0) c.add(s.at("on"), `must list at least one event (${ALERTS.join(", ")})`);
    }
  }
  // Count what was written, valid or not, so one mistake is not reported twice.
  const written = (key: string, val: unknown): number => (Array.isArray(val) ? val.length : s.written(key) ? 1 : 0);
  if (written("email", emailV) + written("sms", smsV) === 0) c.add(path, "needs at least one email or sms recipient");
  return n;
}
