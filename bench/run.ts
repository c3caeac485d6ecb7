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
import { benchSlurmPeer, SLURM_RATE, SLURM_TASKS } from "./peers/slurm.js";

function print(section: string, r: Record<string, number | string> | string[]): void {
  process.stdout.write(`# ${section}\n`);
  if (Array.isArray(r)) for (const line of r) process.stdout.write(line + "\n");
  else for (const [k, v] of Object.entries(r)) process.stdout.write(`${k}: ${v}\n`);
}

/** The peer's rate, when it ran in this invocation: P3 prints its own rates against it. */
let slurmRate: number | undefined;

async function benchPeers(): Promise<Record<string, number | string>> {
  const r = await benchSlurmPeer();
  const rate = r[SLURM_RATE(SLURM_TASKS)];
  if (typeof rate === "number") slurmRate = rate;
  return r;
}

/** Arguments that select a bench by key only, never as part of a name; `optIn`: not in a run without arguments (it installs software). */
interface Selection {
  keys: string[];
  optIn?: boolean;
}

const benches: [string, () => Promise<Record<string, number | string> | string[]>, Selection?][] = [
  ["P1 scheduler", benchScheduler],
  ["hostile input on the event loop", benchHostileInput],
  ["P2 submit to running", () => benchSubmitToRunning()],
  // Right before P3, so both rates come from the same sitting.
  ["peers: Slurm job array of 1,000 /bin/true", benchPeers, { keys: ["peers"], optIn: true }],
  ["P3 batch throughput", () => benchBatchThroughput(undefined, { slurm: slurmRate }), { keys: ["peers"] }],
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

const only = process.argv.slice(2).map((a) => a.toLowerCase());
const keys = new Set(benches.flatMap(([, , sel]) => sel?.keys ?? []));
function selected(name: string, sel: Selection | undefined): boolean {
  if (only.length === 0) return !sel?.optIn;
  return only.some((o) => (keys.has(o) ? (sel?.keys.includes(o) ?? false) : !sel?.optIn && name.toLowerCase().includes(o)));
}
for (const [name, fn, sel] of benches) {
  if (!selected(name, sel)) continue;
  try {
    print(name, await fn());
  } catch (e) {
    process.stdout.write(`# ${name}: failed: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
