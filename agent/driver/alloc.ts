/**
 * Allocs under the process driver (docs/allocs.md): a tree container. The
 * alloc is one parent cgroup holding the alloc's limits; each member runs as
 * an ordinary process-driver task in a child cgroup under it, with only its
 * own optional caps, so one member's peak is absorbed by the others' slack
 * while the whole alloc stays bounded.
 *
 * Files, below the alloc's task dir:
 *   work/                    shared by the members (TORCA_ALLOC_DIR)
 *   members/<name>/          one member's task dir: stdout, stderr, exit, work/
 *   members/<name>/stopped   the member was stopped because member <contents> failed
 *
 * Each member has its own host-side wrapper, so its exit status (and its own
 * cgroup's OOM kills) is recorded even while the agent is down, and members
 * outlive agent restarts like tasks do. The member rules (alloc-rules.ts) are
 * applied by `wait`: a restarted agent applies them to what happened meanwhile.
 */
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ExitInfo } from "../../src/common/types.js";
import { allocStep, stoppedMemberExit, type MemberOutcome } from "./alloc-rules.js";
import type { CgroupV1 } from "./cgroup.js";
import { DEFAULT_PIDS_MAX, type Driver, type FinalUsage, type MemberHandle, type MemberState, type TaskHandle, type TaskLaunch, type TaskUsage, type WaitOptions } from "./driver.js";
import { exitInfoOf, readExitRecord } from "./exit-record.js";
import { prepareWorkDir } from "./lifecycle.js";
import { instanceName } from "./names.js";

export const MEMBERS_DIR = "members";
const STOPPED_FILE = "stopped";
/** Members the alloc stops after another failed get SIGTERM, then SIGKILL after this long. */
export const ALLOC_STOP_GRACE_MS = 5000;
/** Traversable, not listable: a member's user passes through to its own work dir. */
const PASS_THROUGH_MODE = 0o711;

export class ProcessAllocs {
  /** Exits `wait` learned that no exit record holds (a member whose status was lost), by member dir. */
  private readonly waited = new Map<string, ExitInfo>();
  /** Allocs being stopped on request (by task dir): their members' exits are the stop, not a failure to act on. */
  private readonly stopping = new Set<string>();

  constructor(
    /** The process driver: members are its tasks. */
    private readonly driver: Driver,
    private readonly cgroup: CgroupV1,
    private readonly cgroupsUsable: () => Promise<{ ok: boolean }>,
  ) {}

  private memberHandle(h: TaskHandle, m: MemberHandle): TaskHandle {
    return { driver: "process", taskId: `${h.taskId}/${m.name}`, attempt: h.attempt, taskDir: m.dir, pid: m.pid, startedAt: h.startedAt, ...(m.cgroup ? { cgroup: m.cgroup } : {}) };
  }

  private members(h: TaskHandle): TaskHandle[] {
    return (h.members ?? []).map((m) => this.memberHandle(h, m));
  }

  async start(l: TaskLaunch): Promise<TaskHandle> {
    const members = l.members ?? [];
    const allocDir = await prepareWorkDir(l.taskDir, l.user);
    const cg = await this.cgroupsUsable();
    const name = instanceName(l.taskId, l.attempt, l.taskDir);
    const pidsMax = l.pidsMax ?? DEFAULT_PIDS_MAX;
    const startedAt = Date.now();
    if (cg.ok) await this.cgroup.create(name, { cpuCores: l.resources.cpu, memoryBytes: l.resources.memory, pidsMax: pidsMax * members.length });
    const started: MemberHandle[] = [];
    try {
      await mkdir(join(l.taskDir, MEMBERS_DIR), { recursive: true });
      await chmod(join(l.taskDir, MEMBERS_DIR), PASS_THROUGH_MODE);
      for (const m of members) {
        const dir = join(l.taskDir, MEMBERS_DIR, m.name);
        await mkdir(dir, { recursive: true });
        await chmod(dir, PASS_THROUGH_MODE);
        const mh = await this.driver.start({
          taskId: `${l.taskId}/${m.name}`,
          attempt: l.attempt,
          command: m.command,
          ...(l.packageDir ? { packageDir: l.packageDir } : {}),
          taskDir: dir,
          env: { ...l.env, ...m.env, TORCA_MEMBER: m.name, TORCA_ALLOC_DIR: allocDir },
          // Only the member's own caps: the alloc's limits sit on the parent.
          resources: { cpu: m.resources?.cpu ?? 0, memory: m.resources?.memory ?? 0, disk: 0 },
          pidsMax,
          ...(l.user ? { user: l.user } : {}),
          ...(cg.ok ? { cgroupName: `${name}/${m.name}` } : {}),
        });
        started.push({ name: m.name, pid: mh.pid, dir, ...(mh.cgroup ? { cgroup: mh.cgroup } : {}) });
      }
    } catch (e) {
      // All or nothing: an alloc missing a member is not the alloc that was asked for.
      const partial: TaskHandle = { driver: "process", taskId: l.taskId, attempt: l.attempt, taskDir: l.taskDir, pid: 0, startedAt, members: started };
      await Promise.all(this.members(partial).map((mh) => this.driver.destroy(mh).catch(() => undefined)));
      if (cg.ok) await this.cgroup.remove(name).catch(() => undefined);
      throw e;
    }
    const handle: TaskHandle = { driver: "process", taskId: l.taskId, attempt: l.attempt, taskDir: l.taskDir, pid: started[0]!.pid, startedAt, members: started };
    if (cg.ok) handle.cgroup = name;
    return handle;
  }

  /** Waits for the members and applies the member rules: the first failure stops the others. */
  async wait(h: TaskHandle, opts: WaitOptions): Promise<ExitInfo> {
    const handles = this.members(h);
    const pending = new Map(handles.map((mh, i) => [i, this.driver.wait(mh, opts).then((exit) => ({ i, exit }))]));
    const outcomes: MemberOutcome[] = [];
    let stopping = false;
    for (;;) {
      const { i, exit } = await Promise.race(pending.values());
      pending.delete(i);
      const m = h.members![i]!;
      if (!(await readExitRecord(m.dir))) this.waited.set(m.dir, exit);
      outcomes.push({ name: m.name, exit, stoppedByAlloc: (await stoppedBecauseOf(m.dir)) !== undefined });
      const running = [...pending.keys()].map((j) => ({ name: h.members![j]!.name }));
      const step = allocStep([...outcomes, ...running]);
      if (step.kind === "exited") return step.exit;
      if (step.kind === "stop-others" && !stopping && !this.stopping.has(h.taskDir)) {
        stopping = true;
        const others = [...pending.keys()];
        await Promise.all(others.map((j) => writeFile(join(h.members![j]!.dir, STOPPED_FILE), step.cause, { mode: 0o600 })));
        void Promise.all(others.map((j) => this.driver.stop(handles[j]!, ALLOC_STOP_GRACE_MS))).catch(() => undefined);
      }
    }
  }

  /** Each member's state and exit, from its exit record. */
  async memberStates(h: TaskHandle): Promise<MemberState[]> {
    return Promise.all(
      (h.members ?? []).map(async (m): Promise<MemberState> => {
        const rec = await readExitRecord(m.dir);
        const exit = rec ? exitInfoOf(rec) : this.waited.get(m.dir);
        if (!exit) return { name: m.name, state: "running" };
        const cause = await stoppedBecauseOf(m.dir);
        return { name: m.name, state: "exited", exit: cause === undefined ? exit : stoppedMemberExit(exit, cause) };
      }),
    );
  }

  async stop(h: TaskHandle, graceMs: number): Promise<void> {
    this.stopping.add(h.taskDir);
    await Promise.all(this.members(h).map((mh) => this.driver.stop(mh, graceMs)));
  }

  async signal(h: TaskHandle, sig: NodeJS.Signals): Promise<void> {
    await Promise.all(this.members(h).map((mh) => this.driver.signal(mh, sig)));
  }

  /** Running while any member runs; usage is the alloc's parent cgroup (the members' sum). */
  async inspect(h: TaskHandle): Promise<{ running: boolean; usage?: TaskUsage }> {
    const running = (await Promise.all(this.members(h).map((mh) => this.driver.inspect(mh)))).some((x) => x.running);
    const usage = h.cgroup ? await this.cgroup.usage(h.cgroup) : undefined;
    return usage ? { running, usage } : { running };
  }

  /**
   * The alloc's own figures, read from its parent cgroup before `destroy`
   * removes it. Its OOM kills are every member's: cgroup v1 counts a kill only
   * in the victim's own cgroup (measured: the parent's `oom_kill` stays 0 when
   * its limit makes the kernel kill in a child), so the members' exit records
   * are added to the parent's own count.
   */
  async finalUsage(h: TaskHandle): Promise<FinalUsage | undefined> {
    if (!h.cgroup) return undefined;
    const usage = await this.cgroup.usage(h.cgroup);
    if (!usage) return undefined;
    const own = (await oomKillsOf(this.cgroup, h.cgroup)) ?? 0;
    const members = await Promise.all((h.members ?? []).map(async (m) => (await readExitRecord(m.dir))?.usage.oomKills ?? 0));
    return { cpuNs: usage.cpuNs, memoryPeakBytes: usage.memoryPeakBytes, oomKills: members.reduce((a, b) => a + b, own) };
  }

  /** Exited when every member's status is known, gone when none left a trace; otherwise still running (wait sorts it out). */
  async recover(h: TaskHandle): Promise<"running" | "exited" | "gone"> {
    const states = await Promise.all(this.members(h).map((mh) => this.driver.recover(mh)));
    if (states.every((s) => s === "gone")) return "gone";
    if (states.every((s) => s === "exited")) return "exited";
    return "running";
  }

  async destroy(h: TaskHandle): Promise<void> {
    await Promise.all(this.members(h).map((mh) => this.driver.destroy(mh)));
    if (h.cgroup) await this.cgroup.remove(h.cgroup);
    for (const m of h.members ?? []) this.waited.delete(m.dir);
    this.stopping.delete(h.taskDir);
  }
}

async function stoppedBecauseOf(memberDir: string): Promise<string | undefined> {
  try {
    return (await readFile(join(memberDir, STOPPED_FILE), "utf8")).trim();
  } catch {
    return undefined;
  }
}

/** The `oom_kill` count of a cgroup v1 memory cgroup (kills of its own processes). */
async function oomKillsOf(cg: CgroupV1, name: string): Promise<number | undefined> {
  try {
    const text = await readFile(join(cg.dir("memory", name), "memory.oom_control"), "utf8");
    const line = text.split("\n").find((l) => l.startsWith("oom_kill "));
    return line === undefined ? undefined : Number(line.slice("oom_kill ".length));
  } catch {
    return undefined;
  }
}
