import { createWriteStream, type Dirent } from "node:fs";
import { lstat, open, readdir, readlink, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip, constants as zlibConstants } from "node:zlib";
import { randomBytes } from "node:crypto";
import { Header, Pax, type HeaderData } from "tar";
import { UnsafeArchiveError, ValidationError } from "../common/errors.js";
import { archivePathComponents, resolveInsideRoot } from "./archive-paths.js";
import { DigestingStream, type Digest } from "./digest.js";

/**
 * Deterministic tar.gz of a directory: the same tree gives the same bytes and
 * so the same digest, whoever packs it and whenever. Everything that depends
 * on the packing machine is left out or fixed: entries are sorted, mtime is 0,
 * uid/gid are 0 with no user or group names, modes are reduced to 0644/0755
 * (only the executable bit of the source survives), hard links are stored as
 * plain files, and the gzip level is fixed (Node's zlib writes no timestamp).
 * The one remaining dependency is the zlib build: another zlib may compress
 * the same tar to other bytes.
 */

const BLOCK = 512;
const GZIP_LEVEL = 6;
const EPOCH = new Date(0);
const READ_CHUNK = 1 << 20;

type PackEntry =
  | { kind: "dir"; path: string }
  | { kind: "file"; path: string; absolute: string; size: number; executable: boolean }
  | { kind: "symlink"; path: string; target: string };

/** Stable, locale-independent order (plain code unit comparison). */
function byName(a: Dirent, b: Dirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function describeSpecial(d: Dirent): string {
  if (d.isFIFO()) return "fifo";
  if (d.isSocket()) return "socket";
  if (d.isCharacterDevice()) return "character device";
  if (d.isBlockDevice()) return "block device";
  return "special file";
}

/** Walks `root` depth-first in sorted order, refusing what a package may not hold. */
async function* walkSorted(root: string): AsyncGenerator<PackEntry> {
  const symlinks = new Map<string, string>();
  // An explicit stack keeps deep trees off the call stack.
  const stack: string[] = [""];
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    const dirents = (await readdir(join(root, rel), { withFileTypes: true })).sort(byName);
    const subdirs: string[] = [];
    for (const d of dirents) {
      const path = rel === "" ? d.name : `${rel}/${d.name}`;
      const absolute = join(root, path);
      if (typeof archivePathComponents(path) === "string") {
        throw new UnsafeArchiveError(`cannot pack ${JSON.stringify(path)}: its name cannot be stored safely`, path);
      }
      if (d.isDirectory()) {
        // Directories are emitted when popped so that children follow their parent.
        subdirs.push(path);
      } else if (d.isFile()) {
        const st = await lstat(absolute);
        yield { kind: "file", path, absolute, size: st.size, executable: (st.mode & 0o111) !== 0 };
      } else if (d.isSymbolicLink()) {
        const target = await readlink(absolute);
        const parent = rel === "" ? [] : rel.split("/");
        const resolved = resolveInsideRoot(parent, target, symlinks);
        if (!resolved.inside) throw new UnsafeArchiveError(`cannot pack symlink ${JSON.stringify(path)}: ${resolved.reason}`, path);
        symlinks.set(path, target);
        yield { kind: "symlink", path, target };
      } else {
        throw new UnsafeArchiveError(`cannot pack ${describeSpecial(d)} ${JSON.stringify(path)}: packages hold only files, directories and symlinks`, path);
      }
    }
    // Reverse so that popping visits subdirectories in sorted order.
    for (const sub of subdirs.reverse()) stack.push(sub);
    const next = stack[stack.length - 1];
    if (next !== undefined) yield { kind: "dir", path: next };
  }
}

function headerBlocks(data: HeaderData): Buffer {
  const header = new Header({ uid: 0, gid: 0, uname: "", gname: "", mtime: EPOCH, devmaj: 0, devmin: 0, ...data });
  const needsPax = header.encode();
  const block = header.block as Buffer;
  if (!needsPax) return block;
  // Long or non-ASCII names, long link targets, sizes beyond 8 GiB: pax record first.
  const pax = new Pax({ path: data.path, linkpath: data.linkpath, size: data.size, mtime: EPOCH, uid: 0, gid: 0 }).encode();
  return Buffer.concat([pax, block]);
}

async function* fileBody(entry: Extract<PackEntry, { kind: "file" }>): AsyncGenerator<Buffer> {
  const fh = await open(entry.absolute, "r");
  try {
    let remaining = entry.size;
    while (remaining > 0) {
      const want = Math.min(READ_CHUNK, remaining);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, entry.size - remaining);
      if (bytesRead === 0) throw new ValidationError([{ field: entry.path, message: "file shrank while it was being packed" }]);
      remaining -= bytesRead;
      yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
    }
    const padding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
    if (padding > 0) yield Buffer.alloc(padding);
  } finally {
    await fh.close();
  }
}

async function* tarStream(root: string): AsyncGenerator<Buffer> {
  const st = await lstat(root);
  if (!st.isDirectory()) throw new ValidationError([{ field: "dir", message: `${root} is not a directory` }]);
  for await (const entry of walkSorted(root)) {
    switch (entry.kind) {
      case "dir":
        yield headerBlocks({ path: `${entry.path}/`, type: "Directory", mode: 0o755, size: 0 });
        break;
      case "symlink":
        yield headerBlocks({ path: entry.path, type: "SymbolicLink", linkpath: entry.target, mode: 0o777, size: 0 });
        break;
      case "file":
        yield headerBlocks({ path: entry.path, type: "File", mode: entry.executable ? 0o755 : 0o644, size: entry.size });
        yield* fileBody(entry);
        break;
    }
  }
  // End of archive: two zero blocks.
  yield Buffer.alloc(2 * BLOCK);
}

/** Packs `dir` as a deterministic tar.gz stream. Errors (unsafe content, I/O) surface on the stream. */
export function packDirectory(dir: string): Readable {
  const gzip = createGzip({ level: GZIP_LEVEL, memLevel: 8, strategy: zlibConstants.Z_DEFAULT_STRATEGY, chunkSize: 64 * 1024 });
  pipeline(Readable.from(tarStream(dir), { objectMode: false }), gzip).catch((err: unknown) => {
    gzip.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  return gzip;
}

/**
 * Packs `dir` into `file` (written to a temporary name next to it, then
 * renamed, so a reader never sees half an archive) and returns its digest.
 */
export async function packDirectoryToFile(dir: string, file: string): Promise<{ digest: Digest; size: number }> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  const hasher = new DigestingStream();
  try {
    await pipeline(packDirectory(dir), hasher, createWriteStream(tmp, { flags: "wx" }));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { digest: hasher.digest(), size: hasher.bytes };
}
