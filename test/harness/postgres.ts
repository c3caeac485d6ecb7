import { spawn, execFile } from "node:child_process";
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "../../src/cell/ports.js";
import type { HistoryConfig } from "../../src/common/config.js";
import { until } from "./wait.js";

/**
 * Test harness: a real PostgreSQL server (Debian's `postgresql` package) on
 * 127.0.0.1, with its data directory, socket and log in one temporary
 * directory. PostgreSQL refuses to run as root, so as root the server runs as
 * the `postgres` system user the package creates. `stop()` ends the server by
 * the PID this harness started and removes the directory (call it from
 * `after()`); if the test process exits first, the server is killed anyway.
 */

const HOST = "127.0.0.1";
const SUPERUSER = "torca";
const run = promisify(execFile);

/** The newest installed server's bin directory, e.g. /usr/lib/postgresql/15/bin. */
export function postgresBinDir(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin");
}

/** uid/gid to run the server as: the `postgres` user when we are root, ourselves otherwise. */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [uid, gid] = await Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export interface TestPostgres {
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  /** A connection URL for `database` (default: the `postgres` database initdb creates). */
  url(database?: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Creates an empty database and returns the history store's configuration for it, as a manager parses it. */
  historyDatabase(name: string): Promise<HistoryConfig>;
  stop(): Promise<void>;
}

export interface TestPostgresOptions {
  /** Keep the directory (for post-mortems); also TORCA_KEEP_TEST_DIRS. */
  keepDir?: boolean;
  startTimeoutMs?: number;
}

export async function startPostgres(opts: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql");
  const dir = mkdtempSync(join(tmpdir(), "torca-postgres-"));
  const keep = opts.keepDir ?? process.env.TORCA_KEEP_TEST_DIRS !== undefined;
  const removeDir = () => keep || rmSync(dir, { recursive: true, force: true });
  const data = join(dir, "data");
  const socketDir = join(dir, "socket");
  mkdirSync(socketDir);
  const user = await serverUser();
  if (user) for (const d of [dir, socketDir]) chownSync(d, user.uid, user.gid);
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C", LC_ALL: "C" };
  try {
    await run(join(bin, "initdb"), ["-D", data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], { env, ...user });
  } catch (e) {
    removeDir();
    throw new Error(`initdb failed: ${(e as Error).message}`, { cause: e });
  }
  const port = await freePort(HOST);
  const logPath = join(dir, "postgres.log");
  const logFd = openSync(logPath, "a");
  // Durability settings off: a test server's data is thrown away, and fsync is most of its write time.
  const child = spawn(
    join(bin, "postgres"),
    ["-D", data, "-p", String(port), "-k", socketDir, "-c", `listen_addresses=${HOST}`, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=40"],
    { stdio: ["ignore", logFd, logFd], env, ...user },
  );
  closeSync(logFd);
  const pid = child.pid ?? -1;
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  // The last resort when the test process ends without calling stop(): no server outlives its test.
  const killOnExit = () => {
    if (!exited) child.kill("SIGKILL");
    removeDir();
  };
  process.once("exit", killOnExit);
  const stop = async () => {
    process.removeListener("exit", killOnExit);
    if (!exited) {
      child.kill("SIGINT"); // fast shutdown: ends sessions, no checkpoint wait
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exit;
      clearTimeout(t);
    }
    removeDir();
  };
  const url = (database = "postgres") => `postgresql://${SUPERUSER}@${HOST}:${port}/${encodeURIComponent(database)}`;
  try {
    const exitedEarly = exit.then(() => {
      throw new Error(`postgres exited during start-up: ${readFileSync(logPath, "utf8").slice(-2000)}`);
    });
    exitedEarly.catch(() => undefined); // observed by the race below; after a successful start, the exit is stop()'s
    await Promise.race([
      exitedEarly,
      until(
        `PostgreSQL on ${HOST}:${port} to accept connections`,
        async () => {
          const c = new pg.Client({ connectionString: url(), connectionTimeoutMillis: 2000 });
          try {
            await c.connect();
            await c.query("SELECT 1");
            return true;
          } finally {
            await c.end().catch(() => undefined);
          }
        },
        { timeoutMs: opts.startTimeoutMs ?? 60_000, intervalMs: 100 },
      ),
    ]);
  } catch (e) {
    await stop();
    throw e;
  }
  const createDatabase = async (name: string) => {
    const c = new pg.Client({ connectionString: url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    } finally {
      await c.end();
    }
    return url(name);
  };
  return {
    port,
    pid,
    dir,
    url,
    async historyDatabase(name: string) {
      return { engine: "postgres" as const, url: await createDatabase(name), poolSize: 4, connectTimeout: 10_000 };
    },
    createDatabase,

    stop,
  };
}
