import { closeSync, openSync, writeSync } from "node:fs";

/** Creates `path` holding `content` unless it exists (O_EXCL): true when this call created it. */
export function createFileExclusive(path: string, content: string | Buffer, mode = 0o644): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    writeSync(fd, typeof content === "string" ? Buffer.from(content, "utf8") : content);
  } finally {
    closeSync(fd);
  }
  return true;
}
