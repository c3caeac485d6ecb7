/** Naming verbs: resolve (look up or watch a service's endpoints) and `naming dns` (a DNS front end). */
import type { Command } from "commander";
import { loadConfig } from "../../src/common/config.js";
import { ValidationError } from "../../src/common/errors.js";
import { untilSignal, withExamples, type CliContext } from "../context.js";
import { table } from "../format.js";

type Endpoints = { name: string; stale?: boolean; version?: number; endpoints: { host: string; port: number; task: string; node: string }[] };

export function registerResolve(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("resolve")
    .description("naming lookup: the endpoints of a service")
    .argument("<name>", "service name, e.g. web.frontend or ns/web.frontend")
    .option("--watch", "print changes as they happen (until interrupted)")
    .action(async (name: string, o: { watch?: boolean }) => {
      const c = ctx.client();
      const show = (r: Endpoints) =>
        ctx.out(r, () => {
          const note = r.stale ? ` (stale: the manager cannot reach ZooKeeper; last known endpoints)` : "";
          if (!r.endpoints.length) return `${r.name}: no endpoints${note}`;
          return table(["endpoint", "task", "node"], r.endpoints.map((e) => [`${e.host}:${e.port}`, e.task, e.node])) + (note ? `\n${note.trim()}` : "");
        });
      const path = `/v1/names/${encodeURIComponent(name)}`;
      let r = await c.get<Endpoints>(path);
      show(r);
      // --watch long-polls: the manager answers as soon as the name changes (or after 20 s with no change).
      const deadline = Date.now() + 24 * 3_600_000;
      let last = JSON.stringify([r.endpoints, r.stale]);
      while (o.watch && Date.now() < deadline) {
        r = await c.get<Endpoints>(`${path}?index=${r.version ?? 0}&wait=20`);
        const key = JSON.stringify([r.endpoints, r.stale]);
        if (key !== last) show(r);
        last = key;
      }
    });
  withExamples(cmd, ["torca resolve demo.web", "torca resolve prod/web.frontend --watch"]);
}

export function registerNaming(program: Command): void {
  const naming = program.command("naming").description("naming service tools");
  const dns = naming
    .command("dns")
    .description("serve DNS (UDP) for <service>.<namespace>.torca. names: SRV and A records from a watched resolver cache")
    .option("--port <port>", "UDP port", "5353")
    .option("--host <address>", "address to listen on (loopback unless told otherwise)", "127.0.0.1")
    .option("--config <file>", "cluster config (cluster.zookeeper, cluster.root); default: the local cell")
    .option("--zookeeper <connect>", "ZooKeeper connect string (overrides the config)")
    .option("--ttl <seconds>", "TTL of answers", "5")
    .addHelpText("after", "\nExample:\n  torca naming dns --port 5353 &\n  dig @127.0.0.1 -p 5353 SRV demo.web.default.torca");
  dns.action(async (o: { port: string; host: string; config?: string; zookeeper?: string; ttl: string }) => {
    const { Resolver } = await import("../../naming/resolver.js");
    const { DnsServer } = await import("../../naming/dns.js");
    const { findCell } = await import("../settings.js");
    const port = Number(o.port);
    const ttl = Number(o.ttl);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ValidationError([{ field: "--port", message: `not a port: ${o.port}` }]);
    if (!Number.isInteger(ttl) || ttl < 0) throw new ValidationError([{ field: "--ttl", message: `not a number of seconds: ${o.ttl}` }]);
    const cluster = o.config ? loadConfig(o.config).config.cluster : undefined;
    const zookeeper = o.zookeeper ?? cluster?.zookeeper ?? findCell()?.zookeeper;
    if (!zookeeper) throw new ValidationError([{ field: "--config", message: "no ZooKeeper given: pass --config FILE or --zookeeper HOST:PORT, or run next to a local cell" }]);
    const resolver = new Resolver({ zookeeper, root: cluster?.root ?? "/torca", sessionTimeoutMs: cluster?.sessionTimeout ?? 10_000 });
    void resolver.start();
    const server = new DnsServer({ resolver, port, host: o.host, ttl });
    const addr = await server.start();
    process.stderr.write(`torca naming dns: answering for *.torca on udp ${addr.host}:${addr.port} (ZooKeeper ${zookeeper})\n`);
    await untilSignal();
    await server.close();
    resolver.close();
  });
}
