import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { PassThrough } from "node:stream";
import type { Context } from "koa";
import { NotFoundError } from "../../src/common/errors.js";

const POLL_MS = 200;
/** A follow stream ends by itself after this long without the task finishing (clients reconnect). */
const MAX_FOLLOW_MS = 6 * 3_600_000;

/** Last `n` lines of a file, reading backwards in blocks (log files can be large). */
async function tailOffset(path: string, lines: number): Promise<number> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    let pos = size;
    let count = 0;
    const buf = Buffer.alloc(64 * 1024);
    while (pos > 0) {
      const len = Math.min(buf.length, pos);
      pos -= len;
      await fh.read(buf, 0, len, pos);
      for (let i = len - 1; i >= 0; i--) {
        if (buf[i] === 10 && pos + i !== size - 1 && ++count > lines - 1) return pos + i + 1;
      }
    }
    return 0;
  } finally {
    await fh.close();
  }
}

/** Serves a task's log file; with follow, keeps streaming appended bytes until the task has exited. */
export async function serveLog(ctx: Context, path: string, opts: { follow: boolean; tail?: number; isDone: () => boolean }): Promise<void> {
  let start = 0;
  try {
    await stat(path);
  } catch {
    throw new NotFoundError("log file", path.split("/").slice(-2).join("/"));
  }
  if (opts.tail !== undefined) start = await tailOffset(path, opts.tail);
  ctx.set("Content-Type", "text/plain; charset=utf-8");
  if (!opts.follow) {
    ctx.body = createReadStream(path, { start });
    return;
  }
  ctx.req.socket.setTimeout(0);
  const out = new PassThrough();
  ctx.body = out;
  let pos = start;
  let closed = false;
  const began = Date.now();
  ctx.req.on("close", () => (closed = true));
  const pump = async () => {
    while (!closed && Date.now() - began < MAX_FOLLOW_MS) {
      const done = opts.isDone();
      const { size } = await stat(path).catch(() => ({ size: pos }));
      if (size < pos) pos = 0; // copy-truncated by rotation: continue from the new start
      if (size > pos) {
        await new Promise<void>((resolve, reject) => {
          const rs = createReadStream(path, { start: pos, end: size - 1 });
          rs.on("data", (c) => out.write(c));
          rs.on("end", () => resolve());
          rs.on("error", reject);
        });
        pos = size;
      } else if (done) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    out.end();
  };
  void pump().catch(() => out.end());
}
