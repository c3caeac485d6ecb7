/**
 * The peer of P3: Slurm (Debian 12's `slurm-wlm` 22.05) running the same 1,000
 * trivial tasks (`/bin/true`, 1 CPU and 16 MB each) as one job array on this
 * machine, so the two rates come from the same sitting.
 *
 * Slurm is installed when absent (apt-get, here only, never in CI), configured
 * in a temporary directory for one node on loopback only, and munged,
 * slurmctld and slurmd run in the foreground as this process's children, with
 * their pid files beside the configuration; they are stopped by pid and the
 * directory removed whatever happens. Two settings decide Slurm's throughput
 * here: an Epilog, because in 22.05 only its EPILOG_COMPLETE makes slurmctld
 * schedule as soon as a job ends (without one, freed CPUs wait for the
 * one-second background pass: about one job per CPU per second), and
 * `batch_sched_delay=0` instead of the default 3 s before new batch jobs.
 *
 *   node dist/bench/peers/slurm.js [tasks=1000]
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lookup } from "node:dns/promises";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { cpus, hostname, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { nowMs, processesCreated, round } from "../cell-common.js";

const execFileAsync = promisify(execFile);

export const SLURM_TASKS = 1000;
export const SLURM_RATE = (tasks: number): string => `slurm ${tasks} tasks completed (tasks/s)`;

const DAEMONS = { munged: "/usr/sbin/munged", slurmctld: "/usr/sbin/slurmctld", slurmd: "/usr/sbin/slurmd" } as const;

async function installed(): Promise<boolean> {
  try {
    await execFileAsync("sh", ["-c", `test -x ${DAEMONS.munged} && test -x ${DAEMONS.slurmctld} && test -x ${DAEMONS.slurmd} && command -v sbatch`]);
    return true;
  } catch {
    return false;
  }
}

/** apt-get install, once; the packages' own services stay off (no init system starts them here). */
async function ensureSlurm(): Promise<string | undefined> {
  if (await installed()) return undefined;
  if (process.getuid?.() !== 0) throw new Error("Slurm is not installed and installing it needs root (apt-get install slurm-wlm munge)");
  await execFileAsync("apt-get", ["install", "-y", "slurm-wlm", "munge"], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, maxBuffer: 64 * 1024 * 1024 });
  if (!(await installed())) throw new Error("apt-get install slurm-wlm munge did not provide munged, slurmctld, slurmd and sbatch");
  return "installed slurm-wlm and munge with apt-get";
}

/** A TCP port nobody listens on at 127.0.0.1 right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface SlurmDirs {
  dir: string;
  conf: string;
  socket: string;
}

/** One node, this host, everything on 127.0.0.1; accounting off; cons_tres on CPUs and memory. */
function slurmConf(d: SlurmDirs, host: string, ctldPort: number, slurmdPort: number): string {
  const memoryMb = Math.floor((totalmem() / 2 ** 20) * 0.9);
  return `ClusterName=torcabench
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${ctldPort}
SlurmdPort=${slurmdPort}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${d.socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation=${d.dir}/state
SlurmdSpoolDir=${d.dir}/spool
SlurmctldPidFile=${d.dir}/slurmctld.pid
SlurmdPidFile=${d.dir}/slurmd.pid
SlurmctldLogFile=${d.dir}/slurmctld.log
SlurmdLogFile=${d.dir}/slurmd.log
SlurmctldDebug=error
SlurmdDebug=error
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup,task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
Epilog=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MaxArraySize=100001
MaxJobCount=100000
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus().length} RealMemory=${memoryMb} State=UNKNOWN
PartitionName=bench Nodes=${host} Default=YES MaxTime=INFINITE State=UP
`;
}

const CGROUP_CONF = `CgroupPlugin=cgroup/v1
CgroupAutomount=no
`;

class SlurmCell {
  private readonly children: ChildProcess[] = [];
  readonly env: NodeJS.ProcessEnv;

  constructor(readonly d: SlurmDirs) {
    this.env = { ...process.env, SLURM_CONF: d.conf };
  }

  /** Starts a daemon in the foreground as our child; fails if it exits before `ready` holds. */
  async start(file: string, args: string[], ready: () => Promise<boolean>, what: string): Promise<void> {
    const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"], env: this.env });
    this.children.push(child);
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (s: string) => (stderr = (stderr + s).slice(-2000)));
    let exited: string | undefined;
    child.once("exit", (code, sig) => (exited = `${sig ?? code}`));
    child.once("error", (e) => (exited = e.message));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited !== undefined) throw new Error(`${what} exited (${exited}): ${stderr.trim()}`);
      if (await ready().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`${what} not ready within 30 s: ${stderr.trim()}`);
      await sleep(100);
    }
  }

  async run(cmd: string, args: string[]): Promise<string> {
    return (await execFileAsync(cmd, args, { env: this.env, timeout: 30_000, maxBuffer: 64 * 1024 * 1024 })).stdout;
  }

  /** SIGTERM to every daemon by pid, last started first; SIGKILL after 5 s. */
  async stop(): Promise<void> {
    for (const child of this.children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      process.kill(child.pid, "SIGTERM");
      if ((await Promise.race([gone.then(() => true), sleep(5000, false)])) === false) {
        process.kill(child.pid, "SIGKILL");
        await gone;
      }
    }
  }
}

async function fileExists(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}

/** Starts munged, slurmctld and slurmd in `dir` and waits until the node is idle. */
async function startSlurm(dir: string, host: string): Promise<SlurmCell> {
  const d: SlurmDirs = { dir, conf: join(dir, "slurm.conf"), socket: join(dir, "munge", "munge.socket") };
  await Promise.all([mkdir(join(dir, "munge"), { mode: 0o700 }), mkdir(join(dir, "state"), { mode: 0o700 }), mkdir(join(dir, "spool"), { mode: 0o700 })]);
  await writeFile(join(dir, "munge", "munge.key"), randomBytes(1024), { mode: 0o400 });
  await writeFile(d.conf, slurmConf(d, host, await freePort(), await freePort()));
  await writeFile(join(dir, "cgroup.conf"), CGROUP_CONF);
  const cell = new SlurmCell(d);
  const m = join(dir, "munge");
  await cell.start(
    DAEMONS.munged,
    ["--foreground", "--force", `--socket=${d.socket}`, `--key-file=${m}/munge.key`, `--pid-file=${m}/munged.pid`, `--log-file=${m}/munged.log`, `--seed-file=${m}/munged.seed`],
    () => fileExists(`${m}/munged.pid`),
    "munged",
  );
  try {
    await cell.start(DAEMONS.slurmctld, ["-D", "-i", "-f", d.conf], async () => (await cell.run("scontrol", ["ping"])).includes("UP"), "slurmctld");
    await cell.start(DAEMONS.slurmd, ["-D", "-f", d.conf, "-N", host], async () => /^idle/m.test(await cell.run("sinfo", ["-h", "-N", "-o", "%T"])), "slurmd");
  } catch (e) {
    await cell.stop();
    const log = await readFile(join(dir, "slurmctld.log"), "utf8").catch(() => "");
    throw new Error(`${(e as Error).message}${log ? `\nslurmctld.log: ${log.slice(-1500)}` : ""}`, { cause: e });
  }
  return cell;
}

/** Submits the array and waits until none of its tasks is pending, running or completing; returns tasks/s and the count of failures. */
async function runArray(cell: SlurmCell, tasks: number): Promise<{ perS: number; seconds: number; failed: number; forksPerTask: number }> {
  const script = join(cell.d.dir, "true.sh");
  await writeFile(script, "#!/bin/sh\nexec /bin/true\n", { mode: 0o755 });
  const out = join(cell.d.dir, "out");
  await mkdir(out);
  const forks0 = processesCreated();
  let polls = 0;
  const t0 = nowMs();
  const submitted = await cell.run("sbatch", ["--parsable", `--array=1-${tasks}`, "-n1", "-c1", "--mem=16M", "-o", "/dev/null", "-e", "/dev/null", "-D", out, script]);
  const jobId = submitted.trim().split(";")[0]!;
  try {
    for (;;) {
      polls++;
      const active = (await cell.run("squeue", ["-h", "-r", "-j", jobId, "-t", "PD,CF,R,CG", "-o", "%i"])).trim();
      if (!active) break;
      if (nowMs() - t0 > 600_000) throw new Error(`slurm: ${active.split("\n").length} of ${tasks} tasks still active after 600 s`);
      await sleep(100);
    }
    const seconds = (nowMs() - t0) / 1000;
    // The bench's own squeue polls (one process each, and sbatch) are not the cell's.
    const forksPerTask = (processesCreated() - forks0 - polls - 1) / tasks;
    const completed = (await cell.run("squeue", ["-h", "-r", "-j", jobId, "-t", "CD", "-o", "%i"])).trim().split("\n").filter(Boolean).length;
    return { perS: tasks / seconds, seconds, failed: tasks - completed, forksPerTask };
  } catch (e) {
    await cell.run("scancel", [jobId]).catch(() => undefined);
    throw e;
  }
}

export async function benchSlurmPeer(tasks = SLURM_TASKS): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  const install = await ensureSlurm();
  if (install) out["slurm install"] = install;
  const host = hostname();
  const { address } = await lookup(host, { family: 4 });
  if (!address.startsWith("127.")) throw new Error(`host name ${host} resolves to ${address}; the loopback-only Slurm cell needs it to resolve to a 127.x address`);
  const dir = await mkdtemp(join(tmpdir(), "torca-slurm-"));
  try {
    const cell = await startSlurm(dir, host);
    try {
      const version = (await cell.run("sbatch", ["--version"])).trim();
      const r = await runArray(cell, tasks);
      out["slurm version"] = version;
      out[SLURM_RATE(tasks)] = round(r.perS);
      out["slurm wall time (s)"] = round(r.seconds, 2);
      out["slurm processes created per task (machine-wide)"] = round(r.forksPerTask, 1);
      if (r.failed) out["slurm failed tasks"] = r.failed;
    } finally {
      await cell.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchSlurmPeer(Number(process.argv[2] ?? SLURM_TASKS)));
}
