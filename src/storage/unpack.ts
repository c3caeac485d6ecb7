import { createReadStream, constants as fsConstants } from "node:fs";
import { chmod, link, lstat, mkdir, open, rename, symlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { Header, Pax, type HeaderData } from "tar";
import { ConflictError, UnsafeArchiveError } from "../common/errors.js";
import { archivePathComponents, resolveInsideRoot } from "./archive-paths.js";
import { removeReadOnlyTree } from "./tree.js";

/**
 * Safe extraction of an untrusted tar.gz. The tar stream is read here, entry by
 * entry, with node-tar's header and pax decoders but not its extractor: every
 * file system operation is decided by this module after the entry has been
 * checked, so nothing an archive says can write outside the destination.
 *
 * Refused, each with an UnsafeArchiveError naming the entry: absolute paths,
 * `..`, paths through a symlink or a file, symlinks whose target is absolute or
 * resolves outside (following the archive's other symlinks, checked again once
 * all are known), hard links to anything but a regular file extracted earlier,
 * devices, fifos and other types, duplicate entries, too many entries, too many
 * bytes (declared file sizes, and actual decompressed bytes, which also bounds
 * padding and data after the end-of-archive marker).
 *
 * The archive is unpacked into a temporary sibling of `destDir` and renamed
 * into place only when complete, so a failure leaves nothing behind. The result
 * is read-only: files 0444 (0555 if any execute bit was set), directories 0555.
 *
 * `checkArchive` applies the same rules to a stream without writing anything
 * (the manager checks a push with it before the blob is stored).
 */

export interface ExtractLimits {
  /** Sum of the sizes of the regular files (default 4 GiB). */
  maxBytes: number;
  /** Entries, including directories, links and metadata records (default 100 000). */
  maxEntries: number;
  /**
   * Decompressed bytes read in all (headers, padding, trailing blocks).
   * Default: maxBytes + 2 KiB per allowed entry + 1 MiB.
   */
  maxArchiveBytes?: number;
  /** Size of one pax or GNU long-name record (default 1 MiB). */
  maxMetaBytes?: number;
  /**
   * Decompressed bytes per compressed byte (gzip bombs), enforced once more
   * than `ratioFreeBytes` were decompressed. Default: no ratio limit.
   */
  maxRatio?: number;
  /** Decompressed bytes allowed before `maxRatio` applies (default 64 MiB). */
  ratioFreeBytes?: number;
}

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = { maxBytes: 4 * 1024 ** 3, maxEntries: 100_000 };

export interface ExtractOptions {
  /**
   * Runs after every entry is written and checked, before the rename into
   * place; throwing aborts the extraction (used to compare a digest computed
   * while the bytes streamed in).
   */
  beforeCommit?: () => void | Promise<void>;
  /**
   * When the source is a stream: on failure, unpipe it but leave it open so
   * the caller can keep reading it (e.g. to finish a digest). Default false:
   * the stream is destroyed.
   */
  keepSourceOnError?: boolean;
}

export interface ExtractResult {
  path: string;
  /** Non-metadata entries written. */
  entries: number;
  /** Sum of regular file sizes. */
  bytes: number;
}

const BLOCK = 512;

function unsafe(entry: string | undefined, message: string): UnsafeArchiveError {
  return new UnsafeArchiveError(entry === undefined ? message : `entry ${JSON.stringify(entry)}: ${message}`, entry);
}

/** Pulls exact byte counts out of a chunked stream, counting everything pulled. */
class ByteReader {
  private pending: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(
    private readonly source: AsyncIterator<Buffer>,
    private readonly onBytes: (n: number) => void,
  ) {}

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.source.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    this.onBytes(next.value.length);
    this.pending = this.pending.length === 0 ? next.value : Buffer.concat([this.pending, next.value]);
    return true;
  }

  /** Exactly `n` bytes, or null if the stream ended cleanly before the first byte. */
  async read(n: number): Promise<Buffer | null> {
    while (this.pending.length < n) {
      if (!(await this.fill())) {
        if (this.pending.length === 0) return null;
        throw unsafe(undefined, "archive is truncated");
      }
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return out;
  }

  /** Yields exactly `n` bytes in chunks as they arrive. */
  async *chunks(n: number, entry: string): AsyncGenerator<Buffer> {
    let remaining = n;
    while (remaining > 0) {
      if (this.pending.length === 0 && !(await this.fill())) throw unsafe(entry, "archive is truncated inside this entry");
      const take = Math.min(remaining, this.pending.length);
      const out = this.pending.subarray(0, take);
      this.pending = this.pending.subarray(take);
      remaining -= take;
      yield out;
    }
  }

  async skip(n: number, entry: string): Promise<void> {
    for await (const _chunk of this.chunks(n, entry)) {
      /* discarded */
    }
  }

  /** Reads to the end of the stream; bytes still count against the budget. */
  async drain(): Promise<void> {
    this.pending = Buffer.alloc(0);
    while (await this.fill()) this.pending = Buffer.alloc(0);
  }
}

type Kind = "dir" | "file" | "symlink";

interface PendingMeta {
  ex?: HeaderData;
  gex?: HeaderData;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function nulTerminated(buf: Buffer): string {
  const s = buf.toString("utf8");
  const nul = s.indexOf("\0");
  return nul === -1 ? s : s.slice(0, nul);
}

/**
 * Reads the entries of one tar stream, enforcing every rule above, and writes
 * them under `root`; without a root it only checks them (file data is skipped).
 */
class TarExtractor {
  private readonly kinds = new Map<string, Kind>();
  private readonly symlinks = new Map<string, string>();
  private readonly files: { path: string; executable: boolean }[] = [];
  private readonly dirs: string[] = [];
  private headers = 0;
  entries = 0;
  bytes = 0;
  /** The entry being read: limits hit while its bytes stream in name it. */
  current: string | undefined;

  constructor(
    private readonly root: string | undefined,
    private readonly reader: ByteReader,
    private readonly limits: Required<ExtractLimits>,
  ) {}

  async run(): Promise<void> {
    const meta: PendingMeta = {};
    let previousWasNull = false;
    while (true) {
      this.current = undefined;
      const block = await this.reader.read(BLOCK);
      if (block === null) throw unsafe(undefined, "archive ends without an end-of-archive marker");
      let header: Header;
      try {
        header = new Header(block, 0, meta.ex, meta.gex);
      } catch (err) {
        throw unsafe(undefined, `unreadable tar header: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (header.nullBlock) {
        if (previousWasNull) break;
        previousWasNull = true;
        continue;
      }
      previousWasNull = false;
      const named = meta.ex?.path ?? header.path ?? "";
      if (!header.cksumValid) throw unsafe(named || undefined, "tar header checksum mismatch (corrupt or not a tar archive)");
      this.headers += 1;
      if (this.headers > this.limits.maxEntries) throw unsafe(named, `too many entries (limit ${this.limits.maxEntries})`);
      const size = header.size ?? 0;
      switch (header.type) {
        case "ExtendedHeader":
        case "OldExtendedHeader":
          meta.ex = Pax.parse((await this.readMeta(size, named)).toString("utf8"), meta.ex, false);
          break;
        case "GlobalExtendedHeader":
          meta.gex = Pax.parse((await this.readMeta(size, named)).toString("utf8"), meta.gex, true);
          break;
        case "NextFileHasLongPath":
        case "OldGnuLongPath":
          meta.ex = { ...meta.ex, path: nulTerminated(await this.readMeta(size, named)) };
          break;
        case "NextFileHasLongLinkpath":
          meta.ex = { ...meta.ex, linkpath: nulTerminated(await this.readMeta(size, named)) };
          break;
        default: {
          // Pax and GNU records override the ustar fields of the next entry only.
          const path = meta.ex?.path ?? header.path ?? "";
          const linkpath = meta.ex?.linkpath ?? header.linkpath ?? "";
          meta.ex = undefined;
          await this.entry(header, path, linkpath, size);
        }
      }
    }
    // Whatever follows the end marker (tar record padding) is read so that a
    // digest computed upstream covers the whole blob; it still counts as bytes.
    await this.reader.drain();
    this.checkAllSymlinks();
  }

  private async readMeta(size: number, entry: string): Promise<Buffer> {
    if (size > this.limits.maxMetaBytes) throw unsafe(entry, `metadata record of ${size} bytes exceeds ${this.limits.maxMetaBytes}`);
    const body = await this.reader.read(size + padding(size));
    if (body === null) throw unsafe(entry, "archive is truncated");
    return body.subarray(0, size);
  }

  private async entry(header: Header, rawPath: string, linkpath: string, size: number): Promise<void> {
    this.current = rawPath;
    const parts = archivePathComponents(rawPath);
    if (typeof parts === "string") throw unsafe(rawPath, parts);
    const type = header.type;
    if (parts.length === 0) {
      // `./` as written by `tar -C dir .`: the destination itself.
      if (type !== "Directory") throw unsafe(rawPath, `a ${type} entry cannot replace the package root`);
      await this.reader.skip(size + padding(size), rawPath);
      return;
    }
    const key = parts.join("/");
    this.checkParents(parts, rawPath);
    const existing = this.kinds.get(key);
    if (existing !== undefined && !(existing === "dir" && type === "Directory")) {
      throw unsafe(rawPath, `duplicate entry (already extracted as a ${existing})`);
    }
    this.entries += 1;
    const target = this.root === undefined ? undefined : join(this.root, ...parts);
    switch (type) {
      case "File":
      case "OldFile":
      case "ContiguousFile":
        if (this.bytes + size > this.limits.maxBytes) {
          throw unsafe(rawPath, `declared size ${size} brings the package to ${this.bytes + size} bytes, over the limit of ${this.limits.maxBytes}`);
        }
        this.bytes += size;
        await this.mkdirParents(parts);
        if (target === undefined) await this.reader.skip(size, rawPath);
        else {
          await this.writeFile(target, size, rawPath);
          this.files.push({ path: target, executable: ((header.mode ?? 0) & 0o111) !== 0 });
        }
        this.kinds.set(key, "file");
        await this.reader.skip(padding(size), rawPath);
        return;
      case "Directory":
        await this.reader.skip(size + padding(size), rawPath);
        if (existing === undefined) {
          await this.mkdirParents(parts);
          if (target !== undefined) {
            await mkdir(target);
            this.dirs.push(target);
          }
          this.kinds.set(key, "dir");
        }
        return;
      case "SymbolicLink": {
        const resolved = resolveInsideRoot(parts.slice(0, -1), linkpath, this.symlinks);
        if (!resolved.inside) throw unsafe(rawPath, `symlink ${resolved.reason}`);
        await this.reader.skip(size + padding(size), rawPath);
        await this.mkdirParents(parts);
        if (target !== undefined) await symlink(linkpath, target);
        this.kinds.set(key, "symlink");
        this.symlinks.set(key, linkpath);
        return;
      }
      case "Link": {
        const targetParts = archivePathComponents(linkpath);
        if (typeof targetParts === "string") throw unsafe(rawPath, `hard link target ${JSON.stringify(linkpath)}: ${targetParts}`);
        const targetKey = targetParts.join("/");
        if (this.kinds.get(targetKey) !== "file") {
          throw unsafe(rawPath, `hard link target ${JSON.stringify(linkpath)} is not a regular file extracted earlier from this archive`);
        }
        await this.reader.skip(size + padding(size), rawPath);
        await this.mkdirParents(parts);
        if (this.root !== undefined && target !== undefined) await link(join(this.root, ...targetParts), target);
        this.kinds.set(key, "file");
        return;
      }
      case "CharacterDevice":
      case "BlockDevice":
        throw unsafe(rawPath, `device files are not allowed (${type})`);
      case "FIFO":
        throw unsafe(rawPath, "fifos are not allowed");
      default:
        throw unsafe(rawPath, `unsupported entry type ${type}`);
    }
  }

  /** Every leading component must be a directory: never a symlink (writing through it) nor a file. */
  private checkParents(parts: string[], rawPath: string): void {
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      const kind = this.kinds.get(prefix);
      if (kind === "symlink") throw unsafe(rawPath, `path goes through the symlink ${JSON.stringify(prefix)}`);
      if (kind === "file") throw unsafe(rawPath, `path goes through the file ${JSON.stringify(prefix)}`);
    }
  }

  private async mkdirParents(parts: string[]): Promise<void> {
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (this.kinds.has(prefix)) continue;
      this.kinds.set(prefix, "dir");
      if (this.root === undefined) continue;
      const dir = join(this.root, ...parts.slice(0, i));
      await mkdir(dir);
      this.dirs.push(dir);
    }
  }

  private async writeFile(target: string, size: number, rawPath: string): Promise<void> {
    // O_EXCL|O_NOFOLLOW: never reuse or follow something already there.
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
    const fh = await open(target, flags, 0o600);
    try {
      for await (const chunk of this.reader.chunks(size, rawPath)) {
        let offset = 0;
        while (offset < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, offset, chunk.length - offset);
          offset += bytesWritten;
        }
      }
    } finally {
      await fh.close();
    }
  }

  /** Symlinks are judged again with all of them known: a later one can change where an earlier one leads. */
  private checkAllSymlinks(): void {
    for (const [key, target] of this.symlinks) {
      const resolved = resolveInsideRoot(key.split("/").slice(0, -1), target, this.symlinks);
      if (!resolved.inside) throw unsafe(key, `symlink ${resolved.reason}`);
    }
  }

  /** Files first, then directories deepest first, so that every chmod still has a writable parent. */
  async makeReadOnly(): Promise<void> {
    for (const f of this.files) await chmod(f.path, f.executable ? 0o555 : 0o444);
    const dirs = [...this.dirs].sort((a, b) => b.length - a.length);
    for (const d of dirs) await chmod(d, 0o555);
  }
}

function resolveLimits(limits: Partial<ExtractLimits>): Required<ExtractLimits> {
  const maxBytes = limits.maxBytes ?? DEFAULT_EXTRACT_LIMITS.maxBytes;
  const maxEntries = limits.maxEntries ?? DEFAULT_EXTRACT_LIMITS.maxEntries;
  return {
    maxBytes,
    maxEntries,
    maxArchiveBytes: limits.maxArchiveBytes ?? maxBytes + 2048 * maxEntries + 1024 * 1024,
    maxMetaBytes: limits.maxMetaBytes ?? 1024 * 1024,
    maxRatio: limits.maxRatio ?? Infinity,
    ratioFreeBytes: limits.ratioFreeBytes ?? 64 * 1024 * 1024,
  };
}

function isZlibError(err: unknown): err is NodeJS.ErrnoException {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && code.startsWith("Z_");
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/**
 * Reads the tar.gz `input` through a TarExtractor writing under `root` (or
 * only checking, without one). Counts compressed bytes for the ratio limit.
 * On failure `input` is unpiped, and destroyed unless `keepInput`.
 */
async function readTarGz(input: Readable, root: string | undefined, limits: Required<ExtractLimits>, keepInput: boolean): Promise<TarExtractor> {
  const gunzip = createGunzip({ chunkSize: 128 * 1024 });
  let compressedBytes = 0;
  const countCompressed = (chunk: Buffer): void => {
    compressedBytes += chunk.length;
  };
  const forwardInputError = (err: Error): void => {
    gunzip.destroy(err);
  };
  input.on("data", countCompressed);
  input.on("error", forwardInputError);
  input.pipe(gunzip);

  let archiveBytes = 0;
  const reader = new ByteReader(gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>, (n) => {
    archiveBytes += n;
    if (archiveBytes > limits.maxArchiveBytes) throw unsafe(extractor.current, `archive decompresses to more than ${limits.maxArchiveBytes} bytes`);
    if (archiveBytes > limits.ratioFreeBytes && archiveBytes > limits.maxRatio * compressedBytes) {
      throw unsafe(extractor.current, `archive decompresses to more than ${limits.maxRatio} times its compressed size (${archiveBytes} bytes from ${compressedBytes})`);
    }
  });
  // Called back by the reader only while it runs, so after this line.
  const extractor = new TarExtractor(root, reader, limits);
  try {
    await extractor.run();
    return extractor;
  } catch (err) {
    input.unpipe(gunzip);
    gunzip.destroy();
    if (!keepInput) input.destroy();
    if (isZlibError(err)) throw unsafe(undefined, `not a valid gzip stream: ${err.message}`);
    throw err;
  } finally {
    input.off("data", countCompressed);
    input.off("error", forwardInputError);
  }
}

/**
 * Checks the tar.gz stream `source` against every rule of extractSafely,
 * writing nothing; throws the UnsafeArchiveError naming the first bad entry.
 * On failure the stream is unpiped but left open (the caller may still be
 * reading it, e.g. storing the bytes it then discards).
 */
export async function checkArchive(source: Readable, limits: Partial<ExtractLimits> = {}): Promise<Omit<ExtractResult, "path">> {
  const extractor = await readTarGz(source, undefined, resolveLimits(limits), true);
  return { entries: extractor.entries, bytes: extractor.bytes };
}

/**
 * Extracts the tar.gz `source` (a file path or a stream of its bytes) into
 * `destDir`, which must not exist yet; its parent must.
 */
export async function extractSafely(
  source: string | Readable,
  destDir: string,
  limits: Partial<ExtractLimits> = {},
  opts: ExtractOptions = {},
): Promise<ExtractResult> {
  const resolved = resolveLimits(limits);
  if (await exists(destDir)) throw new ConflictError(`cannot extract into ${destDir}: it already exists`, { path: destDir });
  const tmp = join(dirname(destDir), `.${basename(destDir)}.${randomBytes(6).toString("hex")}.extracting`);
  await mkdir(tmp, { mode: 0o700 });

  const ownsInput = typeof source === "string";
  const input = typeof source === "string" ? createReadStream(source, { highWaterMark: 1 << 20 }) : source;
  try {
    const extractor = await readTarGz(input, tmp, resolved, !ownsInput && Boolean(opts.keepSourceOnError));
    await extractor.makeReadOnly();
    await opts.beforeCommit?.();
    await chmod(tmp, 0o555);
    try {
      await rename(tmp, destDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTEMPTY" || code === "EEXIST") throw new ConflictError(`cannot extract into ${destDir}: it already exists`, { path: destDir });
      throw err;
    }
    return { path: destDir, entries: extractor.entries, bytes: extractor.bytes };
  } catch (err) {
    if (ownsInput) input.destroy();
    await removeReadOnlyTree(tmp);
    throw err;
  }
}
