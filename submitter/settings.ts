import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ValidationError } from "../src/common/errors.js";

/** What `torca up` leaves behind so the CLI on this host finds its cell without flags. */
export interface CellFile {
  dir: string;
  managers: string[];
  tokenFile: string;
  zookeeper: string;
  /** The cell CA's certificate, when the cell runs on TLS (`torca up --tls`). */
  ca?: string;
}

export const CELL_FILE = "cell.json";

export function findCell(start = process.cwd()): CellFile | undefined {
  const envDir = process.env.TORCA_CELL_DIR;
  const candidates = envDir ? [resolve(envDir)] : [];
  let d = resolve(start);
  for (let i = 0; i < 32; i++) {
    candidates.push(join(d, ".torca"));
    const up = resolve(d, "..");
    if (up === d) break;
    d = up;
  }
  for (const c of candidates) {
    const f = join(c, CELL_FILE);
    if (existsSync(f)) return JSON.parse(readFileSync(f, "utf8")) as CellFile;
  }
  return undefined;
}

export interface ClientSettings {
  managers: string[];
  token: string;
  /** The cell CA (PEM) managers on HTTPS are verified against. */
  ca?: Buffer;
}

/** --manager, then TORCA_MANAGER, then the local cell; --token, then TORCA_TOKEN, then the local cell's token; --ca, then TORCA_CA, then the local cell's CA. */
export function clientSettings(opts: { manager?: string; token?: string; ca?: string }): ClientSettings {
  const cell = findCell();
  const managers = opts.manager ? [opts.manager] : process.env.TORCA_MANAGER ? process.env.TORCA_MANAGER.split(",") : (cell?.managers ?? []);
  if (managers.length === 0) {
    throw new ValidationError([{ field: "--manager", message: "no manager given: pass --manager URL, set TORCA_MANAGER, or start a local cell with `npm run up`" }]);
  }
  let token = opts.token ?? process.env.TORCA_TOKEN;
  if (!token && cell && existsSync(cell.tokenFile)) token = readFileSync(cell.tokenFile, "utf8").trim();
  if (!token) throw new ValidationError([{ field: "--token", message: "no token given: pass --token, set TORCA_TOKEN, or run next to a local cell" }]);
  const caFile = opts.ca ?? (process.env.TORCA_CA || cell?.ca);
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      throw new ValidationError([{ field: "--ca", message: `cannot read the cell CA ${caFile}: ${(e as Error).message}` }]);
    }
  }
  return { managers: managers.map((m) => m.replace(/\/$/, "")), token, ...(ca ? { ca } : {}) };
}
