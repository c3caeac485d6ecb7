import type { Config } from "../src/common/config.js";
import type { Logger } from "../src/common/logger.js";
import type { Driver } from "./driver/driver.js";
import { LxcDriver } from "./driver/lxc.js";
import { ProcessDriver } from "./driver/process.js";

/**
 * The drivers this machine offers and the attributes they and the config give
 * it: the process driver always, LXC when the machine has it (a config that
 * requires LXC on a machine without it fails the start).
 */
export async function detectDrivers(a: Config["agent"], nodeId: string, log: Logger): Promise<{ drivers: { lxc?: Driver; process: Driver }; attributes: Record<string, string> }> {
  const attributes: Record<string, string> = {};
  const proc = new ProcessDriver();
  let lxc: LxcDriver | undefined;
  if (a.driver !== "process") {
    const candidate = new LxcDriver({ rootfsDir: a.lxc.rootfs, lxcPath: a.lxc.lxcPath, defaultUser: { uid: a.lxc.uid, gid: a.lxc.gid } });
    const fp = await candidate.fingerprint();
    if (fp.available) lxc = candidate;
    else if (a.driver === "lxc") throw new Error(`lxc driver required by config but unavailable: ${fp.reason}`);
    else log.info({ reason: fp.reason }, "lxc unavailable; tasks run as plain processes");
    Object.assign(attributes, fp.attributes);
  }
  Object.assign(attributes, (await proc.fingerprint()).attributes, a.labels, { "driver.lxc": lxc ? "1" : "0", "node.id": nodeId });
  return { drivers: lxc ? { lxc, process: proc } : { process: proc }, attributes };
}
