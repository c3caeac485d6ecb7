import type { Duplex } from "node:stream";
import { namespaceOfJobId, requireInNamespace } from "../../auth/grants.js";
import { ConflictError, UnavailableError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { decodeExecHeader, encodeExecHeader, EXEC_HEADER, EXEC_PROTOCOL } from "../../exec/frames.js";
import type { UpgradeRoute } from "../../http/upgrade.js";
import { findTask, requirePrimary, requireStore, type ManagerView } from "./api.js";

/** Opens the exec upgrade to an agent with this manager's credential (common/http.ts openUpgrade). */
export type AgentUpgrade = (url: string, headers: Record<string, string>) => Promise<Duplex>;

/**
 * `torca exec`: `POST /v1/tasks/:id/exec` with `Upgrade: torca-exec/1`, on
 * the primary (a backup answers 307, like a write). The caller needs submit
 * in the task's namespace (or admin); the exec is recorded as an event on the
 * task before the command starts, then the manager relays the two streams
 * between the client and the agent running the task, which runs the command
 * in the task's context (agent/http/exec.ts).
 */
export function execProxyRoute(v: ManagerView, openAgent: AgentUpgrade, log: Logger): UpgradeRoute {
  return {
    protocol: EXEC_PROTOCOL,
    pattern: "/v1/tasks/:id/exec",
    grant: "submit",
    handle: async (s) => {
      const primary = requirePrimary(v);
      const t = findTask(requireStore(v), s.params.id!, s.caller);
      requireInNamespace(s.caller, "submit", namespaceOfJobId(t.jobId));
      const start = decodeExecHeader(s.headers[EXEC_HEADER]);
      if (t.state !== "running" || !t.nodeId) throw new ConflictError(`task ${t.id} is ${t.state}; exec needs a running task`);
      const node = v.collector()?.node(t.nodeId);
      if (!node || node.state === "lost" || node.state === "disconnected") throw new UnavailableError(`the node running ${t.id} (${t.nodeId}) is not reachable`);
      const upstream = await openAgent(`${node.url}/v1/tasks/${encodeURIComponent(t.id)}/exec`, { [EXEC_HEADER]: encodeExecHeader(start) });
      try {
        await primary.recordTaskEvent(t, "exec", `${s.caller.name} from ${s.from}${start.tty ? " (tty)" : ""}: ${JSON.stringify(start.command)}`);
      } catch (e) {
        upstream.destroy();
        throw e;
      }
      const client = s.accept();
      log.info({ task: t.id, node: node.id, caller: s.caller.name, from: s.from, command: start.command[0], tty: start.tty }, "exec");
      client.pipe(upstream).on("error", () => client.destroy());
      upstream.pipe(client).on("error", () => upstream.destroy());
      await new Promise<void>((resolve) => {
        const done = () => {
          client.destroy();
          upstream.destroy();
          resolve();
        };
        client.once("close", done);
        upstream.once("close", done);
      });
    },
  };
}
