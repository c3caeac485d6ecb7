import { statfsSync } from "node:fs";
import { cpus, hostname, loadavg, totalmem, freemem } from "node:os";
import type { Config } from "../src/common/config.js";
import type { Resources } from "../src/common/types.js";

/** The machine's capacity (config overrides measured values) and what tasks may use after reservations. */
export function measureCapacity(config: Config["agent"]): { capacity: Resources; allocatable: Resources } {
  const fs = statfsSync(config.dataDir);
  const capacity: Resources = {
    cpu: config.resources.cpu ?? cpus().length,
    memory: config.resources.memory ?? totalmem(),
    disk: config.resources.disk ?? fs.blocks * fs.bsize,
  };
  const allocatable: Resources = {
    cpu: Math.max(0, capacity.cpu - (config.reserved.cpu ?? 0)),
    memory: Math.max(0, capacity.memory - (config.reserved.memory ?? 0)),
    disk: Math.max(0, capacity.disk - (config.reserved.disk ?? 0)),
  };
  return { capacity, allocatable };
}

export function machineLoad(dataDir: string): { cpu1m: number; memoryUsed: number; diskFree: number } {
  const fs = statfsSync(dataDir);
  return { cpu1m: loadavg()[0] ?? 0, memoryUsed: totalmem() - freemem(), diskFree: fs.bavail * fs.bsize };
}

export function defaultAgentId(): string {
  return hostname().toLowerCase().replace(/[^a-z0-9._-]/g, "-").slice(0, 64) || "agent";
}
