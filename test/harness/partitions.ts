import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Test harness: network partitions between loopback "hosts" with nftables
 * (facts: /work/shared/notes/partitions-on-loopback.md). One table per run,
 * `torca_test_<run>`, with one output-hook chain: on loopback every packet
 * passes it, so a drop rule there cuts a direction.
 *
 * Two kinds of cut: between addresses (daemons send from their own address,
 * see src/common/http.ts `localAddress`), and "this process to that address"
 * for clients that cannot choose their source address (the ZooKeeper C
 * client; ZooKeeper's own quorum connections): the process goes into a
 * net_cls cgroup with a class id of this run, matched by `meta cgroup`.
 *
 * `heal()` removes every rule and moves the processes back; `close()` also
 * deletes the table and the cgroups (and unmounts net_cls if this run mounted
 * it). Call close() from `after()`; it also runs when the process exits, so
 * nothing of ours is left in `nft list tables` or under the cgroup mount.
 */

const NFT = "/usr/sbin/nft";
const NET_CLS = "/sys/fs/cgroup/net_cls";

function nft(...args: string[]): string {
  return execFileSync(NFT, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export function nftablesAvailable(): boolean {
  if (!existsSync(NFT) || process.getuid?.() !== 0) return false;
  try {
    nft("list", "tables");
    return true;
  } catch {
    return false;
  }
}

/** The tables of partition runs present now (the check that none was left behind). */
export function leftoverTables(): string[] {
  return nft("list", "tables")
    .split("\n")
    .filter((l) => l.includes("torca_test_"))
    .map((l) => l.trim());
}

interface ProcessGroup {
  dir: string;
  classid: number;
  pids: Set<number>;
}

export class Partitions {
  private readonly table: string;
  private readonly groups = new Map<string, ProcessGroup>();
  private mountedNetCls = false;
  private closed = false;
  private readonly onExit = () => this.closeSync();

  private constructor(readonly run: string) {
    this.table = `torca_test_${run}`;
  }

  /** Creates this run's table and chain. `run` names it: letters, digits and _ only. */
  static open(run: string): Partitions {
    if (!/^[A-Za-z0-9_]+$/.test(run)) throw new Error(`bad partition run name ${run}`);
    const p = new Partitions(run);
    nft("add", "table", "inet", p.table);
    nft("add", "chain", "inet", p.table, "out", "{ type filter hook output priority 0; }");
    process.once("exit", p.onExit);
    return p;
  }

  private rule(...match: string[]): void {
    nft("add", "rule", "inet", this.table, "out", ...match);
  }

  /**
   * Cuts traffic between two addresses, both ways (to one port of `b` only,
   * when given). "drop": connections hang until the client's timeout, as to
   * a host that vanished; "reset": they fail at once (TCP only, so a port).
   */
  cut(a: string, b: string, port?: number, how: "drop" | "reset" = "drop"): void {
    if (port === undefined) {
      this.rule("ip", "saddr", a, "ip", "daddr", b, "drop");
      this.rule("ip", "saddr", b, "ip", "daddr", a, "drop");
      return;
    }
    if (how === "reset") {
      // The reset itself leaves from b's port to a: a rule on that direction would swallow it.
      this.rule("ip", "saddr", a, "ip", "daddr", b, "tcp", "dport", String(port), "reject", "with", "tcp", "reset");
      return;
    }
    this.rule("ip", "saddr", a, "ip", "daddr", b, "tcp", "dport", String(port), "drop");
    this.rule("ip", "saddr", b, "ip", "daddr", a, "tcp", "sport", String(port), "drop");
  }

  /** Cuts every connection to one port of `host`, whatever the source address (both ways). */
  cutPortFromAny(host: string, port: number): void {
    this.rule("ip", "daddr", host, "tcp", "dport", String(port), "drop");
    this.rule("ip", "saddr", host, "tcp", "sport", String(port), "drop");
  }

  /** Drops what these processes send to `addresses` (their replies never come: the connection is dead). */
  cutProcesses(name: string, pids: number[], addresses: string[]): void {
    const g = this.group(name);
    for (const pid of pids) {
      writeFileSync(join(g.dir, "cgroup.procs"), String(pid));
      g.pids.add(pid);
    }
    for (const a of addresses) this.rule("meta", "cgroup", String(g.classid), "ip", "daddr", a, "drop");
  }

  private group(name: string): ProcessGroup {
    const known = this.groups.get(name);
    if (known) return known;
    if (!readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === NET_CLS)) {
      mkdirSync(NET_CLS, { recursive: true });
      execFileSync("mount", ["-t", "cgroup", "-o", "net_cls", "net_cls", NET_CLS]);
      this.mountedNetCls = true;
    }
    const dir = join(NET_CLS, `${this.table}_${name}`);
    mkdirSync(dir, { recursive: true });
    // 0x0011NNNN: one class id per group of this run.
    const classid = 0x00110000 + this.groups.size + 1;
    writeFileSync(join(dir, "net_cls.classid"), String(classid));
    const g = { dir, classid, pids: new Set<number>() };
    this.groups.set(name, g);
    return g;
  }

  /** Removes every rule; the processes go back to the root net_cls group. */
  heal(): void {
    nft("flush", "chain", "inet", this.table, "out");
    for (const g of this.groups.values()) {
      for (const pid of readFileSync(join(g.dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
        try {
          writeFileSync(join(NET_CLS, "cgroup.procs"), pid);
        } catch {
          /* exited meanwhile */
        }
      }
      g.pids.clear();
    }
  }

  /** Heals, deletes the table and the cgroups, and unmounts net_cls if this run mounted it. */
  close(): void {
    this.closeSync();
    process.removeListener("exit", this.onExit);
  }

  private closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.heal();
    } finally {
      try {
        nft("delete", "table", "inet", this.table);
      } catch {
        /* already gone */
      }
      for (const g of this.groups.values()) {
        try {
          rmdirSync(g.dir);
        } catch {
          /* still has a process that is exiting; the umount below fails then too */
        }
      }
      if (this.mountedNetCls) {
        try {
          execFileSync("umount", [NET_CLS]);
          rmdirSync(NET_CLS);
        } catch {
          /* busy: another user of net_cls */
        }
      }
    }
  }
}
