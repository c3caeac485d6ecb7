import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { createFileExclusive } from "../common/exclusive-file.js";
import { UnavailableError } from "../common/errors.js";
import { pidAlive } from "../common/process.js";

/**
 * An exclusive claim on a directory by one process: a lock file holding
 * "host pid". PGlite takes no lock of its own, and two processes writing one
 * PGlite data directory corrupt it, so the embedded engine holds this while open.
 * A lock left by a process that is gone (same host, pid not alive) is taken over.
 */

export interface DirLock {
  release(): void;
}

export const LOCK_FILE = "torca-history.lock";


export function lockDir(dir: string, what: string): DirLock {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const mine = `${hostname()} ${process.pid}\n`;
  for (let tries = 0; tries < 2; tries++) {
    if (createFileExclusive(path, mine)) return { release: () => rmSync(path, { force: true }) };
    let held: string;
    try {
      held = readFileSync(path, "utf8");
    } catch {
      continue; // released between our create and our read
    }
    const [host, pidText] = held.trim().split(" ");
    const pid = Number(pidText);
    if (host === hostname() && Number.isInteger(pid) && pid > 0 && pid !== process.pid && !pidAlive(pid)) {
      rmSync(path, { force: true });
      continue;
    }
    throw new UnavailableError(
      `${what} ${dir} is in use by process ${pidText ?? "?"} on ${host ?? "?"} (${path}); the embedded engine serves one manager at a time: use engine: postgres for several`,
    );
  }
  throw new UnavailableError(`${what} ${dir}: could not take ${path}`);
}
