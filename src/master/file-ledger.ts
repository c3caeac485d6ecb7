import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createFileExclusive } from "../common/exclusive-file.js";
import type { LedgerKV } from "../alerting/ledger.js";

/**
 * The alert ledger's store for the master, which has no ZooKeeper session:
 * a directory, a file per entry, under the master's status directory. Claims
 * are files created exclusively, so an alert claimed before the master
 * restarted is not sent again after (its crash-loop alerts stay
 * deduplicated across its own restarts).
 */
export class FileLedgerKV implements LedgerKV {
  constructor(private readonly dir: string) {}

  private file(path: string): string {
    return join(this.dir, ...path.split("/").filter(Boolean));
  }

  async createIfAbsent(path: string, data: Buffer): Promise<boolean> {
    const f = this.file(path);
    // The ledger creates parents as entries too: a parent is a directory here.
    if (data.length === 0) {
      mkdirSync(f, { recursive: true });
      return true;
    }
    return createFileExclusive(f, data);
  }

  async set(path: string, data: Buffer): Promise<void> {
    const f = this.file(path);
    writeFileSync(`${f}.tmp`, data, { mode: 0o644 });
    renameSync(`${f}.tmp`, f);
  }

  async get(path: string): Promise<Buffer | undefined> {
    try {
      return readFileSync(this.file(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async children(path: string): Promise<string[]> {
    try {
      return readdirSync(this.file(path)).filter((n) => !n.endsWith(".tmp"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }

  async remove(path: string): Promise<void> {
    rmSync(this.file(path), { force: true });
  }
}
