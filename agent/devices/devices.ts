/**
 * The devices this agent offers: GPUs found through nvidia-smi and the groups
 * declared in `agent.devices`, a declared name replacing a fingerprinted one.
 * The ad carries names, ids and attributes (what the scheduler matches); the
 * device nodes and variables stay here, where a task's assignment is turned
 * into its environment and the nodes its container binds.
 */
import type { Config } from "../../src/common/config.js";
import { DriverError } from "../../src/common/errors.js";
import type { DeviceAssignment, NodeDeviceGroup } from "../../src/common/types.js";
import { fingerprintNvidia, NVIDIA_GPU } from "./nvidia.js";

export interface AgentDeviceGroup {
  name: string;
  shareable: boolean;
  /** Bound whenever a task has any instance of the group. */
  paths: string[];
  /** The group's own variable; the ids also go in TORCA_DEVICES_<NAME>, and nvidia/gpu's in the NVIDIA variables. */
  env?: string;
  instances: { id: string; attributes: Record<string, string>; paths: string[] }[];
}

/** What a task's devices give it: variables, and host device nodes to bind into its container. */
export interface DeviceLaunch {
  env: Record<string, string>;
  paths: string[];
}

/** `nvidia/gpu` → TORCA_DEVICES_NVIDIA_GPU. */
export function deviceVariable(name: string): string {
  return `TORCA_DEVICES_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/** The groups of `agent.devices`, group attributes under each instance's own. */
export function configuredGroups(devices: Config["agent"]["devices"]): AgentDeviceGroup[] {
  return devices.map((g) => ({
    name: g.name,
    shareable: g.shareable,
    paths: g.paths,
    ...(g.env !== undefined ? { env: g.env } : {}),
    instances: g.instances.map((i) => (typeof i === "string" ? { id: i, attributes: { ...g.attributes }, paths: [] } : { id: i.id, attributes: { ...g.attributes, ...i.attributes }, paths: i.paths })),
  }));
}

export class AgentDevices {
  private readonly byName: ReadonlyMap<string, AgentDeviceGroup>;

  constructor(groups: readonly AgentDeviceGroup[]) {
    this.byName = new Map(groups.map((g) => [g.name, g]));
  }

  /** Fingerprinted GPUs plus the configured groups. */
  static async detect(configured: Config["agent"]["devices"], fingerprint: () => Promise<AgentDeviceGroup | undefined> = fingerprintNvidia): Promise<AgentDevices> {
    const declared = configuredGroups(configured);
    const found = declared.some((g) => g.name === NVIDIA_GPU) ? undefined : await fingerprint();
    return new AgentDevices([...(found ? [found] : []), ...declared]);
  }

  /** For the ad: names, ids and attributes. */
  ad(): NodeDeviceGroup[] {
    return [...this.byName.values()].map((g) => ({ name: g.name, shareable: g.shareable, instances: g.instances.map((i) => ({ id: i.id, attributes: i.attributes })) }));
  }

  /** Whether two assignments share an instance of a device that is not shareable. */
  overlap(a: readonly DeviceAssignment[], b: readonly DeviceAssignment[]): boolean {
    for (const x of a) {
      if (this.byName.get(x.name)?.shareable !== false) continue;
      for (const y of b) if (y.name === x.name && y.ids.some((id) => x.ids.includes(id))) return true;
    }
    return false;
  }

  /** The variables and device nodes of an assignment; refuses names and ids this agent does not offer. */
  launchOf(assigned: readonly DeviceAssignment[]): DeviceLaunch {
    const env: Record<string, string> = {};
    const paths = new Set<string>();
    for (const a of assigned) {
      const group = this.byName.get(a.name);
      if (group === undefined) throw new DriverError(`device ${a.name} is not offered by this node`);
      for (const id of a.ids) {
        const instance = group.instances.find((i) => i.id === id);
        if (instance === undefined) throw new DriverError(`device ${a.name} ${id} is not offered by this node`);
        for (const p of instance.paths) paths.add(p);
      }
      if (a.ids.length > 0) for (const p of group.paths) paths.add(p);
      const ids = a.ids.join(",");
      env[deviceVariable(a.name)] = ids;
      if (a.name === NVIDIA_GPU) {
        env.NVIDIA_VISIBLE_DEVICES = ids;
        env.CUDA_VISIBLE_DEVICES = ids;
      }
      if (group.env !== undefined) env[group.env] = ids;
    }
    return { env, paths: [...paths] };
  }
}
