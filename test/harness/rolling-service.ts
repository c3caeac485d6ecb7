/**
 * The service rollouts are tried on (test/integration/rollout.test.ts, bench
 * P9): an HTTP server run as a process that echoes its VERSION; /healthz
 * passes, /never always fails (a version whose check points there never turns
 * healthy), /signals counts the SIGUSR2s it received.
 */
const SERVER = [
  'const http = require("node:http");',
  "let signals = 0;",
  'process.on("SIGUSR2", () => signals++);',
  "http.createServer((req, res) => {",
  '  if (req.url === "/signals") return res.end(String(signals));',
  '  if (req.url === "/healthz") return res.end("ok");',
  '  if (req.url === "/never") { res.statusCode = 500; return res.end(); }',
  "  res.end(process.env.VERSION);",
  '}).listen(Number(process.env.TORCA_PORT_HTTP), "127.0.0.1");',
].join("\n");

export const ROLLING_SERVICE = "web.rollout";

/**
 * The task file (JSON) of version `version`; rollouts are kept short with
 * minHealthyTime 1s. One failed probe takes an instance out of naming, so the
 * probe timeout is generous: on a loaded machine a 200 ms one timed out for
 * every instance at once.
 */
export function rollingJob(version: string, o: { name?: string; checkPath?: string; update?: Record<string, unknown>; instances?: number } = {}): string {
  return JSON.stringify({
    name: o.name ?? "web",
    type: "service",
    instances: o.instances ?? 4,
    isolation: "process",
    command: ["node", "-e", SERVER],
    env: { VERSION: version },
    resources: { cpu: 0.05, memory: "48MiB" },
    ports: [{ name: "http", check: { type: "http", path: o.checkPath ?? "/healthz", interval: "1s", timeout: "800ms", failures: 1000 } }],
    service: { name: ROLLING_SERVICE },
    restart: { attempts: 5, delay: "1s" },
    update: { minHealthyTime: "1s", healthyDeadline: "20s", progressDeadline: "40s", ...o.update },
  });
}
