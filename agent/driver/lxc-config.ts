/**
 * The LXC side of the lxc driver: the shared read-only root filesystem, the stop
 * hook, and the per-task container configuration (docs/lxc-and-zookeeper.md, LXC 1–4).
 *
 * Inside a container:
 *   /            the rootfs below, read-only (mount points only)
 *   /usr, /etc   the host's, bound read-only
 *   /pkg         the package dir, bound read-only; the cwd when the task has a package
 *   /task/work   taskDir/work, bound read-write (owned by the task's uid); the cwd otherwise
 *   /tmp         a private tmpfs (charged to the task's memory), /dev/shm likewise
 *   /proc, /sys  proc:mixed, sys:ro
 *   /dev/...     the task's device nodes (its devices' paths), bound at their host path
 */
import { chmod, mkdir, readFile, rename, stat, symlink, writeFile, lstat } from "node:fs/promises";
import { join } from "node:path";
import { DriverError } from "../../src/common/errors.js";
import { cfsQuotaUs, type CgroupV1 } from "./cgroup.js";
import { CGROUP_FIGURES_SH, shQuote } from "./wrapper.js";

export const PKG_MOUNT = "/pkg";
export const WORK_MOUNT = "/task/work";

/** Dropped when a task runs as root in its container (docs/lxc-and-zookeeper.md, LXC 2); non-root tasks keep no capabilities at all. */
export const DROPPED_CAPABILITIES = [
  "sys_admin",
  "sys_module",
  "sys_rawio",
  "sys_boot",
  "sys_time",
  "sys_ptrace",
  "net_admin",
  "net_raw",
  "mknod",
  "mac_admin",
  "mac_override",
  "audit_control",
  "audit_write",
  "setfcap",
] as const;

const ROOTFS_DIRS = ["usr", "etc", "proc", "sys", "dev", "tmp", "run", "pkg", "task/work"];
/** Debian 12 has merged /usr. */
const ROOTFS_LINKS = ["bin", "lib", "lib64", "sbin"];

/** Creates the shared rootfs (mount points and /usr symlinks only); idempotent. */
export async function ensureRootfs(rootfs: string): Promise<void> {
  await mkdir(rootfs, { recursive: true, mode: 0o755 });
  await chmod(rootfs, 0o755);
  // chmod too: the agent's umask (077) would leave mount points such as task/ closed to the task's uid.
  await Promise.all(ROOTFS_DIRS.map(async (d) => {
    await mkdir(join(rootfs, d), { recursive: true, mode: 0o755 });
    await chmod(join(rootfs, d), 0o755);
  }));
  await chmod(join(rootfs, "task"), 0o755);
  for (const l of ROOTFS_LINKS) {
    try {
      await lstat(join(rootfs, l));
    } catch {
      await symlink(`usr/${l}`, join(rootfs, l));
    }
  }
}

/**
 * The stop hook runs on the host after the container's processes are gone and
 * before LXC removes its cgroup (tested: memory.oom_control still shows the kill),
 * so it is where the final cgroup figures can be read. It finds the task dir as
 * the directory of the container's config file. It writes cgstats in place: it
 * is read only once `exit` is complete, and the wrapper writes that after
 * lxc-execute returned, which is after this hook.
 */
export function stopHookScript(cgroup: CgroupV1): string {
  return `#!/bin/sh
# Torca LXC stop hook (lxc.hook.stop): final cgroup figures of $LXC_NAME -> <task dir>/cgstats
umask 077
d=\${LXC_CONFIG_FILE%/*}
r=${shQuote(cgroup.root)}
g=${shQuote(cgroup.parent)}/"$LXC_NAME"
s=
${CGROUP_FIGURES_SH}
echo "\${s# }" >"$d/cgstats"
exit 0
`;
}

/** Writes the hook atomically (running containers may be executing the old one) when its content changed. */
export async function ensureStopHook(path: string, content: string): Promise<void> {
  try {
    if ((await readFile(path, "utf8")) === content) return;
  } catch {
    // absent: write it
  }
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode: 0o755 });
  await rename(tmp, path);
}

export interface ContainerConfigInput {
  name: string;
  hostname: string;
  rootfs: string;
  stopHook: string;
  cgroupParent: string;
  packageDir?: string;
  workDir: string;
  env: Record<string, string>;
  uid: number;
  gid: number;
  network: "host" | "none";
  cpuCores: number;
  memoryBytes: number;
  memsw: boolean;
  pidsMax: number;
  tmpSizeBytes: number;
  /** Device nodes to bind in (deviceNodes()). */
  devices?: DeviceNode[];
}

/** A host path bound into the container; character and block devices are also allowed in its devices cgroup. */
export interface DeviceNode {
  path: string;
  /** c or b for device files; undefined for anything else (bound only). */
  type?: "c" | "b";
  major: number;
  minor: number;
}

/** Linux's dev_t split (glibc's major()/minor()): 12 bits of major and 20 of minor, spread over 64 bits. */
export function deviceNumbers(rdev: number | bigint): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/** What each path is on this host; a missing one fails the start (the node's config or driver changed). */
export async function deviceNodes(paths: readonly string[]): Promise<DeviceNode[]> {
  return Promise.all(
    paths.map(async (path) => {
      let s;
      try {
        s = await stat(path, { bigint: true });
      } catch (e) {
        throw new DriverError(`device node ${path} is missing: ${(e as Error).message}`);
      }
      const type = s.isCharacterDevice() ? "c" : s.isBlockDevice() ? "b" : undefined;
      return { path, ...(type ? { type } : {}), ...deviceNumbers(s.rdev) };
    }),
  );
}

/** LXC's config parser is line-based and mount entries are space-separated: refuse what would not survive it. */
function checkConfigValue(what: string, v: string, allowSpaces: boolean): void {
  if (/[\n\r\0]/.test(v) || (!allowSpaces && /\s/.test(v))) throw new DriverError(`${what} cannot be expressed in an LXC config (${allowSpaces ? "line break" : "whitespace"}): ${JSON.stringify(v)}`);
}

export function renderContainerConfig(c: ContainerConfigInput): string {
  for (const [what, v] of [["rootfs", c.rootfs], ["stop hook", c.stopHook], ["work dir", c.workDir], ["package dir", c.packageDir ?? ""]] as const) checkConfigValue(what, v, false);
  const lines: string[] = [
    `lxc.uts.name = ${c.hostname}`,
    ...(c.network === "none" ? ["lxc.net.0.type = empty", "lxc.net.0.flags = up"] : ["lxc.net.0.type = none"]),
    "lxc.console.path = none",
    "lxc.tty.max = 0",
    "lxc.pty.max = 0",
    `lxc.rootfs.path = dir:${c.rootfs}`,
    "lxc.rootfs.options = ro",
    "lxc.autodev = 1",
    "lxc.mount.auto = proc:mixed sys:ro",
    "lxc.mount.entry = /usr usr none ro,bind 0 0",
    "lxc.mount.entry = /etc etc none ro,bind 0 0",
    `lxc.mount.entry = tmpfs tmp tmpfs rw,nosuid,nodev,size=${c.tmpSizeBytes},mode=1777 0 0`,
    "lxc.mount.entry = tmpfs dev/shm tmpfs rw,nosuid,nodev,create=dir,size=16m 0 0",
    ...(c.packageDir ? [`lxc.mount.entry = ${c.packageDir} ${PKG_MOUNT.slice(1)} none ro,bind 0 0`] : []),
    `lxc.mount.entry = ${c.workDir} ${WORK_MOUNT.slice(1)} none rw,bind 0 0`,
    `lxc.init.cwd = ${c.packageDir ? PKG_MOUNT : WORK_MOUNT}`,
    `lxc.init.uid = ${c.uid}`,
    `lxc.init.gid = ${c.gid}`,
    ...(c.uid === 0 ? [`lxc.cap.drop = ${DROPPED_CAPABILITIES.join(" ")}`] : ["lxc.cap.keep = none"]),
    "lxc.no_new_privs = 1",
    // An explicit cgroup path (instead of lxc.payload.NAME, which gets a -1 suffix
    // when taken) so that usage can be read without asking LXC where it went.
    `lxc.cgroup.dir.container = ${c.cgroupParent}/${c.name}`,
    `lxc.cgroup.dir.monitor = ${c.cgroupParent}-monitor/${c.name}`,
    `lxc.cgroup.pids.max = ${c.pidsMax}`,
    `lxc.hook.stop = ${c.stopHook}`,
  ];
  for (const d of c.devices ?? []) {
    checkConfigValue("device node", d.path, false);
    lines.push(`lxc.mount.entry = ${d.path} ${d.path.slice(1)} none bind,create=file 0 0`);
    if (d.type !== undefined) lines.push(`lxc.cgroup.devices.allow = ${d.type} ${d.major}:${d.minor} rwm`);
  }
  // The quota counts in periods of CFS_PERIOD_US, the period every new cgroup v1 starts with; writing it again would cost
  // another walk of every cpu cgroup in the kernel (cgroup.ts, setLimits).
  if (c.cpuCores > 0) lines.push(`lxc.cgroup.cpu.cfs_quota_us = ${cfsQuotaUs(c.cpuCores)}`);
  if (c.memoryBytes > 0) {
    // memsw must be ≥ the memory limit, so the memory limit goes first.
    lines.push(`lxc.cgroup.memory.limit_in_bytes = ${c.memoryBytes}`);
    if (c.memsw) lines.push(`lxc.cgroup.memory.memsw.limit_in_bytes = ${c.memoryBytes}`);
  }
  for (const [k, v] of Object.entries(c.env)) {
    checkConfigValue(`environment variable ${k}`, v, true);
    lines.push(`lxc.environment = ${k}=${v}`);
  }
  return lines.join("\n") + "\n";
}
