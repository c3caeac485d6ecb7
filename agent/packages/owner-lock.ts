import { open, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { ConflictError } from "../../src/common/errors.js";
import { pidAlive } from "../../src/common/process.js";

/**
 * A cache directory belongs to one agent process. Reference counts (what is
 * in use) and garbage collection live in that process's memory, so a second
 * agent on the same directory could evict packages the first one runs from.
 * This lock file (`pid@host`, created with O_EXCL) makes the mistake loud.
 * A lock left by a dead process on this host is taken over; one written by
 * another host (or unreadable) cannot be checked and must be removed by hand.
 */
export interface DirectoryLock {
  readonly path: string;
  release(): Promise<void>;
}

const MAX_TAKEOVER_TRIES = 3;

export async function acquireDirectoryLock(dir: string, name = "agent.lock"): Promise<DirectoryLock> {
  const path = join(dir, name);
  const me = `${process.pid}@${hostname()}`;
  for (let i = 0; i < MAX_TAKEOVER_TRIES; i++) {
    try {
      const fh = await open(path, "wx", 0o644);
      try {
        await fh.writeFile(`${me}\n`);
      } finally {
        await fh.close();
      }
      return {
        path,
        async release() {
          const owner = await readFile(path, "utf8").catch(() => "");
          if (owner.trim() === me) await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = (await readFile(path, "utf8").catch(() => "")).trim();
    const match = /^(\d+)@(.+)$/.exec(owner);
    const pid = match ? Number(match[1]) : NaN;
    const host = match?.[2];
    // An empty or foreign lock may be one being written right now: never steal it.
    if (!match || host !== hostname() || pidAlive(pid)) {
      throw new ConflictError(
        `directory ${dir} is in use by ${owner ? `process ${owner}` : "another process"} (lock ${path}); a package cache directory belongs to one agent (remove the lock by hand if that process is gone)`,
        { path },
      );
    }
    // Stale: its owner on this host is dead. Take it over.
    await rm(path, { force: true });
  }
  throw new ConflictError(`could not take the lock ${path}: other processes keep racing for it`, { path });
}
