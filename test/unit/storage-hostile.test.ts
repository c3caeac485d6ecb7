import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstat, mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { UnsafeArchiveError } from "../../src/common/errors.js";
import { checkArchive, extractSafely, type ExtractLimits } from "../../src/storage/unpack.js";
import { removeReadOnlyTree } from "../../src/storage/tree.js";
import { hostileCorpus, zeroBomb, padded, paxRecords, tarOf, tgzOf, ustarHeader, type RawEntry } from "../harness/archives.js";

/*
 * Hostile archives are written byte by byte (test/harness/archives.ts), not
 * with the library the extractor uses, so that they contain exactly the entry
 * under test. A GNU tar listing checks they do.
 */

const scratch = await mkdtemp(join(tmpdir(), "torca-hostile-"));
after(() => removeReadOnlyTree(scratch));

let n = 0;
async function workDir(): Promise<string> {
  const dir = join(scratch, `case-${++n}`);
  await mkdir(dir);
  return dir;
}

/** GNU tar's view of the archive: proves the hostile entry really is in it. */
function gnuTarNames(tgz: Buffer, dir: string): string[] {
  const file = join(dir, "listing.tgz");
  execFileSync("sh", ["-c", `cat > '${file}'`], { input: tgz });
  return execFileSync("tar", ["-tzf", file], { encoding: "utf8" }).trim().split("\n");
}

async function expectRefused(tgz: Buffer, entry: string | undefined, message: RegExp, limits: Partial<ExtractLimits> = {}): Promise<void> {
  const parent = await workDir();
  const work = join(parent, "work");
  await mkdir(work);
  const dest = join(work, "pkg");
  await assert.rejects(extractSafely(Readable.from([tgz]), dest, limits), (err: unknown) => {
    assert.ok(err instanceof UnsafeArchiveError, `expected UnsafeArchiveError, got ${String(err)}`);
    assert.equal(err.code, "unsafe_archive");
    assert.equal(err.context.entry, entry);
    assert.match(err.message, message);
    if (entry !== undefined) assert.ok(err.message.includes(JSON.stringify(entry)), `message names the entry: ${err.message}`);
    return true;
  });
  // Nothing left: no destination, no temporary directory, nothing beside them.
  assert.deepEqual(await readdir(work), []);
  assert.deepEqual((await readdir(parent)).sort(), ["work"]);
}

describe("the test archive builder", () => {
  test("builds archives that GNU tar and extractSafely both read", async () => {
    const dir = await workDir();
    const tgz = tgzOf([
      { name: "dir/", type: "5", mode: 0o755 },
      { name: "dir/file", body: "content" },
      { name: "dir/run", body: "#!/bin/sh\n", mode: 0o755 },
      { name: "rel-link", type: "2", linkname: "dir/file" },
      { name: "hard", type: "1", linkname: "dir/file" },
    ]);
    assert.deepEqual(gnuTarNames(tgz, dir), ["dir/", "dir/file", "dir/run", "rel-link", "hard"]);
    const dest = join(dir, "ok");
    const result = await extractSafely(Readable.from([tgz]), dest);
    assert.equal(result.entries, 5);
    assert.equal(await readFile(join(dest, "rel-link"), "utf8"), "content");
    assert.equal(await readFile(join(dest, "hard"), "utf8"), "content");
    assert.equal((await lstat(join(dest, "dir", "run"))).mode & 0o777, 0o555);
  });
});

describe("extractSafely refuses hostile archives", () => {
  test("absolute path", async () => {
    const tgz = tgzOf([{ name: "/tmp/torca-evil", body: "x" }]);
    assert.deepEqual(gnuTarNames(tgz, await workDir()), ["/tmp/torca-evil"]);
    await expectRefused(tgz, "/tmp/torca-evil", /absolute path/);
    await assert.rejects(lstat("/tmp/torca-evil"));
  });

  test("'..' escapes, plain and nested", async () => {
    await expectRefused(tgzOf([{ name: "../evil", body: "x" }]), "../evil", /'\.\.'/);
    await expectRefused(tgzOf([{ name: "a/", type: "5" }, { name: "a/../../evil", body: "x" }]), "a/../../evil", /'\.\.'/);
    await assert.rejects(lstat(join(scratch, "evil")));
  });

  test("'..' smuggled in a pax header over a harmless ustar name", async () => {
    const pax = paxRecords({ path: "../pax-evil" });
    const tar = Buffer.concat([ustarHeader({ name: "PaxHeader/x", type: "x" }, pax.length), padded(pax), tarOf([{ name: "harmless", body: "x" }])]);
    const tgz = gzipSync(tar);
    assert.deepEqual(gnuTarNames(tgz, await workDir()), ["../pax-evil"]);
    await expectRefused(tgz, "../pax-evil", /'\.\.'/);
  });

  test("symlink to /etc, and writing through it", async () => {
    await expectRefused(tgzOf([{ name: "etc", type: "2", linkname: "/etc" }]), "etc", /absolute target "\/etc"/);
    await expectRefused(tgzOf([{ name: "up", type: "2", linkname: "../../.." }]), "up", /resolves outside/);
  });

  test("symlink chain that escapes only when the links are followed", async () => {
    // d/up -> ..  is d/.. = the root: inside. esc -> d/up/..  looks like d,
    // but d/up is the root, so it is the root's parent.
    const tgz = tgzOf([
      { name: "d/", type: "5" },
      { name: "d/up", type: "2", linkname: ".." },
      { name: "esc", type: "2", linkname: "d/up/.." },
    ]);
    assert.deepEqual(gnuTarNames(tgz, await workDir()), ["d/", "d/up", "esc"]);
    await expectRefused(tgz, "esc", /resolves outside/);
  });

  test("symlink chain whose escape appears only with a later entry", async () => {
    // When esc is written, d/x does not exist yet and d/x/.. is d: inside.
    // The later d/x -> .. turns esc into the root's parent.
    const tgz = tgzOf([
      { name: "d/", type: "5" },
      { name: "esc", type: "2", linkname: "d/x/.." },
      { name: "d/x", type: "2", linkname: ".." },
    ]);
    await expectRefused(tgz, "esc", /resolves outside/);
  });

  test("a path through a symlink (even one pointing inside)", async () => {
    await expectRefused(
      tgzOf([
        { name: "real/", type: "5" },
        { name: "alias", type: "2", linkname: "real" },
        { name: "alias/file", body: "x" },
      ]),
      "alias/file",
      /through the symlink "alias"/,
    );
  });

  test("a symlink replacing a directory already extracted", async () => {
    await expectRefused(
      tgzOf([
        { name: "a/", type: "5" },
        { name: "a", type: "2", linkname: "." },
      ]),
      "a",
      /duplicate entry/,
    );
  });

  test("hard links that escape or point at a symlink", async () => {
    await expectRefused(tgzOf([{ name: "passwd", type: "1", linkname: "/etc/passwd" }]), "passwd", /hard link target "\/etc\/passwd": absolute/);
    await expectRefused(tgzOf([{ name: "h", type: "1", linkname: "../outside" }]), "h", /'\.\.'/);
    await expectRefused(tgzOf([{ name: "h", type: "1", linkname: "not-yet-there" }]), "h", /not a regular file extracted earlier/);
    await expectRefused(
      tgzOf([
        { name: "d/", type: "5" },
        { name: "d/s", type: "2", linkname: "../x" },
        { name: "h", type: "1", linkname: "d/s" },
      ]),
      "h",
      /not a regular file/,
    );
  });

  test("device files and fifos", async () => {
    await expectRefused(tgzOf([{ name: "null", type: "3" }]), "null", /device files are not allowed \(CharacterDevice\)/);
    await expectRefused(tgzOf([{ name: "sda", type: "4" }]), "sda", /device files are not allowed \(BlockDevice\)/);
    await expectRefused(tgzOf([{ name: "pipe", type: "6" }]), "pipe", /fifos are not allowed/);
  });

  test("too big by declared size: refused before any byte is read", async () => {
    // 8 GiB - 1 declared, no body at all: the header alone must be enough to refuse.
    const tgz = tgzOf([{ name: "huge", size: 0o77777777777 }]);
    await expectRefused(tgz, "huge", /declared size 8589934591/, { maxBytes: 1024 * 1024 });
  });

  test("too big by the sum of files", async () => {
    const chunk = Buffer.alloc(400 * 1024, 0x61);
    const tgz = tgzOf([
      { name: "one", body: chunk },
      { name: "two", body: chunk },
      { name: "three", body: chunk },
    ]);
    await expectRefused(tgz, "three", /over the limit of 1048576/, { maxBytes: 1024 * 1024 });
  });

  test("too big by actual bytes: a small tar followed by a zero bomb", async () => {
    // The declared sizes are tiny; 64 MiB of zeros after the end marker
    // (≈64 KiB compressed) must still stop at the decompressed-bytes budget.
    const tgz = tgzOf([{ name: "small", body: "x" }], Buffer.alloc(64 * 1024 * 1024));
    assert.ok(tgz.length < 200 * 1024);
    await expectRefused(tgz, undefined, /decompresses to more than/, { maxBytes: 1024 * 1024, maxEntries: 10 });
  });

  test("too many entries", async () => {
    const entries: RawEntry[] = Array.from({ length: 20 }, (_, i) => ({ name: `f${String(i).padStart(2, "0")}`, body: "x" }));
    await expectRefused(tgzOf(entries), "f10", /too many entries \(limit 10\)/, { maxEntries: 10 });
  });

  test("corrupt header checksum and a non-gzip stream", async () => {
    const tar = tarOf([{ name: "file", body: "x" }]);
    tar[0] = "g".charCodeAt(0);
    await expectRefused(gzipSync(tar), "gile", /checksum mismatch/);
    await expectRefused(Buffer.from("this is not gzip at all"), undefined, /not a valid gzip stream/);
    const good = tgzOf([{ name: "file", body: "x".repeat(5000) }]);
    await expectRefused(good.subarray(0, good.length - 30), undefined, /not a valid gzip stream|truncated/);
  });

  test("nothing is written outside even when the archive fails late", async () => {
    const dir = await workDir();
    const dest = join(dir, "pkg");
    await writeFile(join(dir, "sentinel"), "untouched");
    const tgz = tgzOf([
      { name: "fine/", type: "5" },
      { name: "fine/file", body: "ok" },
      { name: "../sentinel", body: "overwritten" },
    ]);
    await assert.rejects(extractSafely(Readable.from([tgz]), dest), UnsafeArchiveError);
    assert.equal(await readFile(join(dir, "sentinel"), "utf8"), "untouched");
    assert.deepEqual(await readdir(dir), ["sentinel"]);
  });
});

describe("checkArchive: the same rules without writing anything", () => {
  /** The manager's default package limits (config manager.packageLimits). */
  const managerLimits: Partial<ExtractLimits> = { maxBytes: 1024 ** 3, maxEntries: 100_000, maxRatio: 100, ratioFreeBytes: 64 * 1024 * 1024 };

  for (const c of hostileCorpus()) {
    test(`refuses the corpus' ${c.what}, naming ${JSON.stringify(c.entry)}`, async () => {
      await assert.rejects(checkArchive(Readable.from([c.tgz]), managerLimits), (err: unknown) => {
        assert.ok(err instanceof UnsafeArchiveError, `expected UnsafeArchiveError, got ${String(err)}`);
        assert.equal(err.status, 422);
        assert.equal(err.context.entry, c.entry);
        assert.match(err.message, c.message);
        return true;
      });
    });
  }

  test("the ratio applies only past the ratio-free bytes", async () => {
    const bomb = zeroBomb(1, 128);
    const within = await checkArchive(Readable.from([bomb]), { ...managerLimits, ratioFreeBytes: 256 * 1024 * 1024 });
    assert.equal(within.bytes, 128 * 1024 * 1024);
    await assert.rejects(checkArchive(Readable.from([bomb]), managerLimits), (err: unknown) => err instanceof UnsafeArchiveError && err.context.entry === "bomb/part-0");
  });

  test("accepts a normal package and counts it", async () => {
    const tgz = tgzOf([{ name: "bin/", type: "5" }, { name: "bin/run", body: "#!/bin/sh\n", mode: 0o755 }, { name: "link", type: "2", linkname: "bin/run" }]);
    assert.deepEqual(await checkArchive(Readable.from([tgz]), managerLimits), { entries: 3, bytes: 10 });
  });
});
