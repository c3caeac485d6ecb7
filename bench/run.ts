/**
 * `npm run bench`: every benchmark, one after the other, printing `name: value`
 * lines. Figures are measured, never asserted. Benches that need something this
 * machine lacks (root, lxc) say so and are skipped.
 */
import { benchAgentLoss, benchTakeover } from "./cell-failover.js";
import { benchSubmitToRunning } from "./cell-latency.js";
import { benchBatchThroughput } from "./cell-throughput.js";
import { benchDriverStart } from "./driver-start.js";
import { benchFragmentation } from "./fragmentation.js";
import { benchHistoryArchive } from "./history-archive.js";
import { benchHostileInput } from "./hostile-input.js";
import { benchManagerScale } from "./manager-scale.js";
import { benchNaming } from "./naming.js";
import { benchPackagePull } from "./package-pull.js";
import { benchPackagePeers } from "./package-peers.js";
import { benchRollout } from "./rollout.js";
import { benchScheduler } from "./scheduler.js";

function print(section: string, r: Record<string, number | string> | string[]): void {
  process.stdout.write(`# ${section}\n`);
  if (Array.isArray(r)) for (const line of r) process.stdout.write(line + "\n");
  else for (const [k, v] of Object.entries(r)) process.stdout.write(`${k}: ${v}\n`);
}

const benches: [string, () => Promise<Record<string, number | string> | string[]>][] = [
  ["P1 scheduler", benchScheduler],
  ["hostile input on the event loop", benchHostileInput],
  ["P2 submit to running", () => benchSubmitToRunning()],
  ["P3 batch throughput", () => benchBatchThroughput()],
  ["P4 takeover", () => benchTakeover()],
  ["P5 agent loss", () => benchAgentLoss()],
  ["P6 naming", benchNaming],
  ["P7 manager at 10,000 machines and 100,000 tasks", () => benchManagerScale()],
  ["P8 package pull", benchPackagePull],
  ["P8b package pull onto 10 agents: storage against peers", benchPackagePeers],
  ["P9 rolling update", () => benchRollout()],
  ["P10 history archival", () => benchHistoryArchive()],
  ["P11 fragmentation", benchFragmentation],
  ["driver start latency and throughput", () => benchDriverStart(30)],
];

const only = process.argv.slice(2);
for (const [name, fn] of benches) {
  if (only.length && !only.some((o) => name.toLowerCase().includes(o.toLowerCase()))) continue;
  try {
    print(name, await fn());
  } catch (e) {
    process.stdout.write(`# ${name}: failed: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
