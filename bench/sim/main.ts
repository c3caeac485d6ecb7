/**
 * `node dist/bench/sim/main.js`: runs a simulated cell of N machines against a
 * running Torca cell (its ZooKeeper and token) until SIGINT or SIGTERM, and
 * prints its statistics every 10 s. Example, against `torca up`'s cell:
 *
 *   node dist/bench/sim/main.js --zookeeper 127.0.0.1:2181 --token-file .torca/token --agents 10000
 */
import { Command, InvalidArgumentError } from "commander";
import { readTokenFile } from "../../src/common/auth.js";
import { createLogger } from "../../src/common/logger.js";
import { zookeeperAuthOf } from "../../src/coord/credential.js";
import { parseCpu, parseDuration, parseSize } from "../../src/common/units.js";
import { SimCell } from "./sim-cell.js";

function parsed(parse: (v: unknown) => number | string) {
  return (v: string) => {
    const r = parse(v);
    if (typeof r === "string") throw new InvalidArgumentError(r);
    return r;
  };
}

const program = new Command("torca-sim")
  .description("simulate many Torca agents from one process (one ZooKeeper session, one HTTP server)")
  .requiredOption("--zookeeper <connect>", "ZooKeeper connect string of the cell")
  .requiredOption("--token-file <file>", "the cell's token file")
  .option("--manager-token-file <file>", "the managers' token file (cluster.managerTokenFile), when the managers have their own")
  .option("--root <path>", "cluster root znode", "/torca")
  .option("--zookeeper-auth <file>", "file holding the cell's ZooKeeper credential (cluster.zookeeperAuth)")
  .option("--agents <n>", "number of simulated machines", parsed((v) => (/^\d+$/.test(String(v)) && Number(v) > 0 ? Number(v) : "must be a positive integer")), 1000)
  .option("--id-prefix <prefix>", "machine id prefix", "sim-")
  .option("--listen <host:port>", "HTTP listen address (port 0 = any free port)", "127.0.0.1:0")
  .option("--report-interval <duration>", "full report interval of every machine", parsed(parseDuration), 5000)
  .option("--batch-run <duration>", "run time of batch tasks", parsed(parseDuration), 1000)
  .option("--session-timeout <duration>", "ZooKeeper session timeout", parsed(parseDuration), 4000)
  .option("--cpu <cores>", "cores per machine", parsed(parseCpu), 8)
  .option("--memory <size>", "memory per machine", parsed(parseSize), 32 * 1024 ** 3)
  .option("--disk <size>", "disk per machine", parsed(parseSize), 500 * 1024 ** 3)
  .option("--report-concurrency <n>", "reports in flight at once", parsed((v) => (/^\d+$/.test(String(v)) && Number(v) > 0 ? Number(v) : "must be a positive integer")), 32)
  .option("--ad-refresh <duration>", "rewrite each machine's znode (its load) at most this often; 0: never", parsed(parseDuration), 60_000);

program.parse();
const o = program.opts<{
  zookeeper: string;
  zookeeperAuth?: string;
  tokenFile: string;
  managerTokenFile?: string;
  root: string;
  agents: number;
  idPrefix: string;
  listen: string;
  reportInterval: number;
  batchRun: number;
  sessionTimeout: number;
  cpu: number;
  memory: number;
  disk: number;
  reportConcurrency: number;
  adRefresh: number;
}>();
const m = /^(.+):(\d+)$/.exec(o.listen);
if (!m) program.error("--listen must be host:port");

const log = createLogger("sim");
const cell = new SimCell({
  zookeeper: o.zookeeper,
  ...(o.zookeeperAuth ? { auth: zookeeperAuthOf({ root: o.root, zookeeperAuth: { file: o.zookeeperAuth } }) } : {}),
  root: o.root,
  token: readTokenFile(o.tokenFile),
  ...(o.managerTokenFile ? { managerToken: readTokenFile(o.managerTokenFile) } : {}),
  agents: o.agents,
  idPrefix: o.idPrefix,
  host: m![1]!,
  port: Number(m![2]),
  sessionTimeoutMs: o.sessionTimeout,
  reportIntervalMs: o.reportInterval,
  batchRunMs: o.batchRun,
  reportConcurrency: o.reportConcurrency,
  capacity: { cpu: o.cpu, memory: o.memory, disk: o.disk },
  adRefreshMs: o.adRefresh,
  logger: log,
});
await cell.start();
log.info({ agents: o.agents, url: cell.urlOf(cell.idOf(0)) }, "simulated cell running");
const statsTimer = setInterval(() => log.info(cell.stats(), "simulated cell"), 10_000);
let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    clearInterval(statsTimer);
    void cell.stop().then(() => process.exit(0));
  });
}
