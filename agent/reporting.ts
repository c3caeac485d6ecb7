import type { Got } from "got";
import type { Logger } from "../src/common/logger.js";
import { parseBody, ReportReplySchema, type AgentAd, type AgentReport, type ReportReply } from "../src/common/protocol.js";
import type { LeaderInfo } from "../src/coord/election.js";
import type { AgentNaming } from "./naming/index.js";
import type { PackageCache } from "./packages/cache.js";
import type { PeerCorruption } from "./packages/peer-pull.js";
import type { TaskRunner } from "./tasks/runner.js";

/**
 * The agent's reports to the primary: every task change at once (batched when
 * many change together) plus a full report every interval (level-triggered:
 * every report carries the whole task table).
 *
 * Reports on task changes carry the task list only; the periodic one also
 * refreshes usage from the cgroups and the machine ad in ZooKeeper. Doing
 * those on every change costs a ZooKeeper write and a cgroup read per running
 * task each time, which delayed reports by seconds with 1,000 tasks.
 */

export interface ReporterOptions {
  id: string;
  http: Got;
  runner: TaskRunner;
  cache: PackageCache;
  /** Health of service tasks, once naming runs. */
  naming: () => AgentNaming | undefined;
  log: Logger;
  /** The primary to report to (none: nothing is sent). */
  leader: () => LeaderInfo | undefined;
  /** The machine ad as of now. */
  ad: () => Promise<AgentAd>;
  /** Writes the ad to the agent's znode (when it changed enough). */
  refreshAd: (ad: AgentAd) => Promise<void>;
  /** The primary answered a report. */
  onReply: (reply: ReportReply) => void;
  /** Runs after each periodic cgroup reading (the usage history samples it). */
  onUsageRead?: () => void;
}

const MAX_CORRUPTIONS = 100;

export class Reporter {
  private timer?: NodeJS.Timeout;
  private soon?: NodeJS.Timeout;
  private reporting = false;
  private again = false;
  private stopped = false;
  private fullReportDue = true;
  private lastAd?: AgentAd;
  /** Corrupted blobs from peers not yet in an answered report (at most MAX_CORRUPTIONS, newest kept). */
  private corruptions: PeerCorruption[] = [];

  constructor(private readonly o: ReporterOptions) {}

  /** Starts the periodic full report; `onInterval` runs with each. */
  start(intervalMs: number, onInterval: () => void): void {
    this.timer = setInterval(() => {
      this.fullReportDue = true;
      this.schedule(0);
      onInterval();
    }, intervalMs);
  }

  /** Reports after `delayMs`, unless a report is already scheduled. */
  schedule(delayMs: number): void {
    if (this.stopped || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.report();
    }, delayMs);
  }

  /** Tells the primary at once that a peer served a corrupted blob (it raises an alert). */
  notePeerCorruption(c: PeerCorruption): void {
    this.corruptions = [...this.corruptions, c].slice(-MAX_CORRUPTIONS);
    this.schedule(0);
  }

  /** The ad changed in a way other agents act on (the blobs it serves): rewrite it with the next report. */
  adChanged(): void {
    this.fullReportDue = true;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    for (const t of [this.timer, this.soon]) if (t) clearTimeout(t);
  }

  /** Sends the full task list to the primary and refreshes the znode's machine state. */
  private async report(): Promise<void> {
    if (this.reporting) {
      this.again = true;
      return;
    }
    this.reporting = true;
    try {
      if (this.fullReportDue) {
        this.fullReportDue = false;
        await this.o.runner.refreshUsage();
        this.o.onUsageRead?.();
        this.lastAd = await this.o.ad();
        await this.o.refreshAd(this.lastAd);
      }
      const leader = this.o.leader();
      if (!leader) return;
      const load = (this.lastAd ??= await this.o.ad()).load!;
      const cachedPackages = (await this.o.cache.list()).map(String);
      const corruptions = this.corruptions;
      const body: AgentReport = { agentId: this.o.id, tasks: this.withHealth(this.o.runner.report({ forPrimary: true })), cachedPackages, load, ...(corruptions.length ? { peerCorruptions: corruptions } : {}) };
      const reply = JSON.parse(await this.send(`${leader.url}/v1/agents/${encodeURIComponent(this.o.id)}/report`, body)) as unknown;
      const answer = parseBody(ReportReplySchema, reply);
      this.corruptions = this.corruptions.filter((c) => !corruptions.includes(c));
      this.o.runner.markRecorded(answer.recorded);
      this.o.onReply(answer);
    } catch (e) {
      this.o.log.warn({ err: e }, "report failed; will retry");
      setTimeout(() => this.schedule(0), 1000).unref();
    } finally {
      this.reporting = false;
      if (this.again) {
        this.again = false;
        this.schedule(0);
      }
    }
  }

  /**
   * Posts a report. A manager that is no longer the primary answers 307 to
   * the one that is (this agent's view of /leader may lag, e.g. while its own
   * session is being replaced): followed here, because an HTTP client drops
   * the bearer token on a redirect to another origin.
   */
  private async send(url: string, body: AgentReport): Promise<string> {
    const opts = { json: body, retry: { limit: 1, methods: ["POST" as const] }, followRedirect: false };
    let res = await this.o.http.post(url, opts);
    if (res.statusCode === 307 && res.headers.location) res = await this.o.http.post(new URL(res.headers.location, url).href, opts);
    if (res.statusCode !== 200) throw new Error(`report to ${url}: HTTP ${res.statusCode}`);
    return res.body;
  }

  private withHealth(tasks: AgentReport["tasks"]): AgentReport["tasks"] {
    return tasks.map((t) => {
      const healthy = t.state === "running" ? this.o.naming()?.healthy(t.taskId, t.attempt) : undefined;
      return healthy === undefined ? t : { ...t, healthy };
    });
  }
}
