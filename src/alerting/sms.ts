import type { Got, Method } from "got";
import { createHttpClient, httpErrorToTorca } from "../common/http.js";
import { withDefaults, type WithDefaults } from "../common/options.js";
import { SMS_MAX_CHARS, truncateChars } from "./message.js";
import type { AlertMessage, Notifier } from "./types.js";

/** HTTP SMS gateway settings (manager config `alerting.sms`). */
export interface SmsConfig {
  /** Gateway URL; may contain {{to}} and {{text}}, substituted URL-encoded. */
  url: string;
  /** Default POST. */
  method?: "POST" | "PUT" | "GET";
  headers?: Record<string, string>;
  /**
   * Body template with {{to}} and {{text}}. Substitutions are JSON-escaped when
   * the content-type header mentions json, URL-encoded for
   * application/x-www-form-urlencoded, and inserted as-is otherwise.
   * Default: `{"to":"{{to}}","text":"{{text}}"}` sent as application/json.
   */
  body?: string;
  /** Whole-request timeout in ms (default 10 s). */
  timeoutMs?: number;
  /**
   * Retries inside one delivery attempt, only for failures where the gateway
   * surely did not receive the request (connection refused, DNS), because
   * repeating a POST that did arrive would send a second SMS. The Alerter's
   * backoff retries handle everything else. Default 1.
   */
  retries?: number;
}

export const DEFAULT_SMS_BODY = '{"to":"{{to}}","text":"{{text}}"}';

type BodyEncoding = "json" | "form" | "raw";

export function bodyEncodingFor(headers: Record<string, string>): BodyEncoding {
  const ct = Object.entries(headers).find(([k]) => k.toLowerCase() === "content-type")?.[1]?.toLowerCase() ?? "";
  if (ct.includes("json")) return "json";
  if (ct.includes("x-www-form-urlencoded")) return "form";
  return "raw";
}

/** Single-pass substitution: a text that itself contains "{{to}}" is not expanded again. */
export function renderTemplate(template: string, values: { to: string; text: string }, encoding: BodyEncoding | "url"): string {
  const enc = (s: string): string => {
    switch (encoding) {
      case "json":
        return JSON.stringify(s).slice(1, -1);
      case "form":
      case "url":
        return encodeURIComponent(s);
      case "raw":
        return s;
    }
  };
  return template.replace(/\{\{\s*(to|text)\s*\}\}/g, (_m, name: "to" | "text") => enc(values[name]));
}

const DEFAULTS = Object.freeze({ method: "POST" as const, timeoutMs: 10_000, retries: 1 });

/** Sends the short form of an alert (at most 160 characters) through an HTTP SMS gateway. */
export class SmsNotifier implements Notifier {
  readonly channel = "sms" as const;
  private readonly client: Got;
  private readonly method: Method;
  private readonly headers: Record<string, string>;
  private readonly template: string | undefined;
  private readonly encoding: BodyEncoding;
  private readonly config: WithDefaults<typeof DEFAULTS, SmsConfig>;

  constructor(config: SmsConfig) {
    this.config = withDefaults(DEFAULTS, config);
    this.method = this.config.method;
    const usesDefaultBody = config.body === undefined && this.method !== "GET";
    this.headers = { ...(usesDefaultBody && !hasHeader(config.headers, "content-type") ? { "content-type": "application/json" } : {}), ...config.headers };
    this.template = this.method === "GET" ? undefined : (config.body ?? DEFAULT_SMS_BODY);
    this.encoding = bodyEncodingFor(this.headers);
    this.client = createHttpClient({ timeoutMs: this.config.timeoutMs, retries: 0 }).extend({
      retry: { limit: this.config.retries, methods: [this.method], statusCodes: [], errorCodes: ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN"] },
    });
  }

  /** The URL and body that send() would use for this message. */
  render(to: string, msg: AlertMessage): { url: string; body: string | undefined } {
    const values = { to, text: truncateChars(msg.short, SMS_MAX_CHARS) };
    return {
      url: renderTemplate(this.config.url, values, "url"),
      body: this.template === undefined ? undefined : renderTemplate(this.template, values, this.encoding),
    };
  }

  async send(to: string, msg: AlertMessage): Promise<void> {
    const { url, body } = this.render(to, msg);
    try {
      await this.client(url, { method: this.method, headers: this.headers, body });
    } catch (e) {
      throw httpErrorToTorca(e, `sms gateway ${new URL(url).host}`);
    }
  }
}

function hasHeader(headers: Record<string, string> | undefined, name: string): boolean {
  return Object.keys(headers ?? {}).some((k) => k.toLowerCase() === name);
}
