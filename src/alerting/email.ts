import nodemailer, { type Transporter } from "nodemailer";
import type SMTPTransport from "nodemailer/lib/smtp-transport/index.js";
import { UnavailableError } from "../common/errors.js";
import { withDefaults, type WithDefaults } from "../common/options.js";
import type { AlertMessage, Notifier } from "./types.js";

/** SMTP settings (manager config `alerting.email`). */
export interface EmailConfig {
  host: string;
  port: number;
  /** TLS from the first byte (SMTPS, usually port 465). With false, STARTTLS is used when offered. */
  secure: boolean;
  /** Refuse to send unless the server upgrades the connection with STARTTLS. */
  requireTLS?: boolean;
  auth?: { user: string; pass: string };
  /** Sender, e.g. "Torca <torca@example.com>". */
  from: string;
  /** Connection, greeting and socket timeout in ms (default 10 s), so one bad server cannot stall the retry queue. */
  timeoutMs?: number;
}

const DEFAULTS = Object.freeze({ timeoutMs: 10_000, requireTLS: false });

/** Sends alerts as plain-text + HTML mail over SMTP (one connection per message: alerts are few). */
export class EmailNotifier implements Notifier {
  readonly channel = "email" as const;
  private readonly transport: Transporter<SMTPTransport.SentMessageInfo>;
  private readonly config: WithDefaults<typeof DEFAULTS, EmailConfig>;

  constructor(config: EmailConfig) {
    this.config = withDefaults(DEFAULTS, config);
    const timeout = this.config.timeoutMs;
    this.transport = nodemailer.createTransport({
      host: config.host,
      port: config.port,
      secure: config.secure,
      requireTLS: this.config.requireTLS,
      auth: config.auth ? { user: config.auth.user, pass: config.auth.pass } : undefined,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    });
  }

  async send(to: string, msg: AlertMessage): Promise<void> {
    let info: SMTPTransport.SentMessageInfo;
    try {
      info = await this.transport.sendMail({ from: this.config.from, to, subject: msg.subject, text: msg.text, html: msg.html });
    } catch (e) {
      throw new UnavailableError(`smtp ${this.config.host}:${this.config.port}: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    if (info.rejected.length > 0) throw new UnavailableError(`smtp ${this.config.host}:${this.config.port} rejected ${to}: ${info.response}`);
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
