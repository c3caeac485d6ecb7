/**
 * NVIDIA GPUs through nvidia-smi: one instance per GPU, identified by its
 * UUID (what NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES accept, and
 * stable across reboots, unlike the index), with its model and memory as
 * attributes and /dev/nvidia<index> as its device node.
 */
import { execFile } from "node:child_process";
import { access } from "node:fs/promises";
import { promisify } from "node:util";
import { findExecutable } from "../driver/fingerprint.js";
import type { AgentDeviceGroup } from "./devices.js";

const execFileAsync = promisify(execFile);

export const NVIDIA_GPU = "nvidia/gpu";
/** The query the agent runs; the parser reads exactly these columns, in this order. */
export const NVIDIA_SMI_ARGS = ["--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"];
/** Nodes every CUDA process needs besides its GPU's own, bound when present. */
const NVIDIA_CONTROL_NODES = ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"];

export interface NvidiaGpu {
  index: number;
  uuid: string;
  name: string;
  /** memory.total in MiB (nvidia-smi's unit), when it reports one. */
  memoryMiB?: number;
}

/**
 * Lines of `index, uuid, name, memory.total` as nvidia-smi writes them
 * (", "-separated; with or without the header and the " MiB" unit; "[N/A]"
 * for a value it cannot read). The name may itself hold commas, so it is
 * everything between the uuid and the last field. Lines that are not a GPU
 * (the header, blank lines, errors) are skipped.
 */
export function parseNvidiaSmi(text: string): NvidiaGpu[] {
  const gpus: NvidiaGpu[] = [];
  for (const raw of text.split("\n")) {
    const fields = raw.trim().split(/\s*,\s*/);
    if (fields.length < 4) continue;
    const index = Number(fields[0]);
    const uuid = fields[1] as string;
    if (!/^\d+$/.test(fields[0] as string) || !/^(GPU|MIG)-[0-9A-Za-z-]+$/.test(uuid)) continue;
    const memory = /^(\d+(?:\.\d+)?)(?:\s*MiB)?$/.exec(fields[fields.length - 1] as string);
    const name = fields.slice(2, -1).join(", ");
    gpus.push({ index, uuid, name, ...(memory ? { memoryMiB: Number(memory[1]) } : {}) });
  }
  return gpus;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The GPUs as a device group; undefined when nvidia-smi is absent, fails, or lists none. */
export async function fingerprintNvidia(): Promise<AgentDeviceGroup | undefined> {
  const smi = await findExecutable("nvidia-smi");
  if (smi === undefined) return undefined;
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(smi, NVIDIA_SMI_ARGS, { timeout: 10_000 }));
  } catch {
    return undefined;
  }
  return nvidiaGroup(parseNvidiaSmi(stdout), exists);
}

/** The group of `gpus`; device nodes are listed only when they exist on this machine. */
export async function nvidiaGroup(gpus: readonly NvidiaGpu[], present: (path: string) => Promise<boolean>): Promise<AgentDeviceGroup | undefined> {
  if (gpus.length === 0) return undefined;
  const onlyPresent = async (paths: string[]): Promise<string[]> => (await Promise.all(paths.map(async (p) => ((await present(p)) ? [p] : [])))).flat();
  return {
    name: NVIDIA_GPU,
    shareable: false,
    paths: await onlyPresent(NVIDIA_CONTROL_NODES),
    instances: await Promise.all(
      gpus.map(async (g) => ({
        id: g.uuid,
        attributes: { model: g.name, index: String(g.index), uuid: g.uuid, ...(g.memoryMiB !== undefined ? { memory: `${g.memoryMiB}MiB` } : {}) },
        paths: await onlyPresent([`/dev/nvidia${g.index}`]),
      })),
    ),
  };
}
