import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { PayloadTooLargeError, UnsafeArchiveError, ValidationError } from "../../src/common/errors.js";
import { BlobStore } from "../../src/storage/blob-store.js";
import { DigestingStream, digestHex, digestOfBuffer, isDigest, parseDigest } from "../../src/storage/digest.js";
import { packDirectory, packDirectoryToFile } from "../../src/storage/pack.js";
import { extractSafely } from "../../src/storage/unpack.js";
import { removeReadOnlyTree } from "../../src/storage/tree.js";

const scratch = await mkdtemp(join(tmpdir(), "torca-storage-"));
after(() => removeReadOnlyTree(scratch));

let counter = 0;
async function freshDir(name: string): Promise<string> {
  const dir = join(scratch, `${name}-${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A small tree with a nested dir, an executable, a symlink, a long and a non-ASCII name. */
async function makeTree(): Promise<string> {
  const root = await freshDir("tree");
  await mkdir(join(root, "bin"));
  await mkdir(join(root, "lib", "deep"), { recursive: true });
  await writeFile(join(root, "bin", "server"), "#!/bin/sh\necho serving\n");
  await chmod(join(root, "bin", "server"), 0o750);
  await writeFile(join(root, "lib", "deep", "data.txt"), "x".repeat(10_000));
  await writeFile(join(root, "README"), "hello\n");
  await writeFile(join(root, "lib", `${"n".repeat(150)}.txt`), "long name\n");
  await writeFile(join(root, "lib", "café.txt"), "accent\n");
  await symlink("lib/deep/data.txt", join(root, "data-link"));
  return root;
}

async function bufferOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("digest", () => {
  test("parses canonical digests and rejects everything else", () => {
    const d = digestOfBuffer("abc");
    assert.equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(parseDigest(d), d);
    assert.equal(digestHex(d).length, 64);
    for (const bad of ["", "sha256:", d.toUpperCase(), `sha512:${digestHex(d)}`, `${d}0`, `sha256:${"g".repeat(64)}`, 42, undefined]) {
      assert.equal(isDigest(bad), false, String(bad));
      assert.throws(() => parseDigest(bad, "package"), (e: unknown) => e instanceof ValidationError && e.field === "package");
    }
  });

  test("DigestingStream hashes what passes and stops at maxBytes", async () => {
    const data = Buffer.alloc(100_000, 7);
    const hasher = new DigestingStream();
    const out = await bufferOf(Readable.from([data.subarray(0, 40_000), data.subarray(40_000)]).pipe(hasher));
    assert.deepEqual(out, data);
    assert.equal(hasher.digest(), `sha256:${createHash("sha256").update(data).digest("hex")}`);
    assert.equal(hasher.bytes, data.length);

    const limited = new DigestingStream({ maxBytes: 50_000 });
    await assert.rejects(pipeline(Readable.from([data.subarray(0, 40_000), data.subarray(40_000)]), limited, async (src: AsyncIterable<Buffer>) => {
      for await (const _ of src) {
        /* consume */
      }
    }), PayloadTooLargeError);
  });
});

describe("pack", () => {
  test("is deterministic: same tree, same bytes, whatever the mtimes", async () => {
    const tree = await makeTree();
    const out = await freshDir("out");
    const a = await packDirectoryToFile(tree, join(out, "a.tgz"));
    const b = await packDirectoryToFile(tree, join(out, "b.tgz"));
    assert.equal(a.digest, b.digest);
    await utimes(join(tree, "README"), new Date(2_000_000_000_000), new Date(2_000_000_000_000));
    await utimes(join(tree, "lib"), new Date(1_000_000_000_000), new Date(1_000_000_000_000));
    const c = await packDirectoryToFile(tree, join(out, "c.tgz"));
    assert.equal(c.digest, a.digest);
    assert.deepEqual(await readFile(join(out, "c.tgz")), await readFile(join(out, "a.tgz")));
    // The stream form gives the same bytes as the file form.
    assert.equal(digestOfBuffer(await bufferOf(packDirectory(tree))), a.digest);
    assert.equal(a.size, (await lstat(join(out, "a.tgz"))).size);
  });

  test("content and executable bit change the digest; group/other bits and umask do not", async () => {
    const tree = await makeTree();
    const out = await freshDir("out");
    const base = await packDirectoryToFile(tree, join(out, "base.tgz"));
    await chmod(join(tree, "README"), 0o664);
    assert.equal((await packDirectoryToFile(tree, join(out, "perm.tgz"))).digest, base.digest);
    await chmod(join(tree, "README"), 0o744);
    const exec = await packDirectoryToFile(tree, join(out, "exec.tgz"));
    assert.notEqual(exec.digest, base.digest);
    await chmod(join(tree, "README"), 0o644);
    await writeFile(join(tree, "README"), "hellO\n");
    assert.notEqual((await packDirectoryToFile(tree, join(out, "content.tgz"))).digest, base.digest);
  });

  test("GNU tar reads the archive: sorted entries, owner 0/0, mtime 0", async () => {
    const tree = await makeTree();
    const out = await freshDir("out");
    await packDirectoryToFile(tree, join(out, "p.tgz"));
    const listing = execFileSync("tar", ["--numeric-owner", "-tvzf", join(out, "p.tgz")], { encoding: "utf8" }).trim().split("\n");
    const names = execFileSync("tar", ["-tzf", join(out, "p.tgz")], { encoding: "utf8" }).trim().split("\n");
    assert.deepEqual(names, ["README", "data-link", "bin/", "bin/server", "lib/", `lib/café.txt`, `lib/${"n".repeat(150)}.txt`, "lib/deep/", "lib/deep/data.txt"]);
    for (const line of listing) {
      assert.match(line, / 0\/0 /, line);
      assert.match(line, /1970-01-01 00:00/, line);
    }
    assert.match(listing.find((l) => l.includes("bin/server")) ?? "", /^-rwxr-xr-x/);
    assert.match(listing.find((l) => l.includes("README")) ?? "", /^-rw-r--r--/);
  });

  test("refuses a symlink pointing outside and a fifo", async () => {
    const escaping = await freshDir("esc");
    await symlink("/etc/passwd", join(escaping, "passwd"));
    await assert.rejects(packDirectoryToFile(escaping, join(scratch, `x${counter}.tgz`)), (e: unknown) => e instanceof UnsafeArchiveError && e.context.entry === "passwd");
    const climbing = await freshDir("climb");
    await mkdir(join(climbing, "sub"));
    await symlink("../../x", join(climbing, "sub", "up"));
    await assert.rejects(bufferOf(packDirectory(climbing)), (e: unknown) => e instanceof UnsafeArchiveError && e.context.entry === "sub/up");
    const withFifo = await freshDir("fifo");
    execFileSync("mkfifo", [join(withFifo, "pipe")]);
    await assert.rejects(bufferOf(packDirectory(withFifo)), (e: unknown) => e instanceof UnsafeArchiveError && /fifo/.test(e.message));
    // No half-written archive is left next to the target.
    assert.deepEqual((await readdir(scratch)).filter((n) => n.includes(".tmp")), []);
  });
});

describe("blob store", () => {
  test("round trip, idempotent put, verify, delete", async () => {
    const store = new BlobStore(await freshDir("store"));
    const data = Buffer.from("package bytes ".repeat(1000));
    const put = await store.putStream(Readable.from([data]));
    assert.equal(put.digest, digestOfBuffer(data));
    assert.equal(put.size, data.length);
    assert.equal(store.pathOf(put.digest), join(store.root, "blobs", "sha256", digestHex(put.digest)));
    assert.equal(await store.has(put.digest), true);
    assert.equal((await store.stat(put.digest))?.size, data.length);
    assert.deepEqual(await bufferOf(await store.openRead(put.digest)), data);
    assert.equal(await store.verify(put.digest), true);

    const again = await store.putStream(Readable.from([data.subarray(0, 100), data.subarray(100)]));
    assert.deepEqual(again, put);
    assert.deepEqual(await readdir(join(store.root, "blobs", "sha256")), [digestHex(put.digest)]);

    await chmod(store.pathOf(put.digest), 0o644);
    await writeFile(store.pathOf(put.digest), "rotted");
    assert.equal(await store.verify(put.digest), false);
    await store.delete(put.digest);
    assert.equal(await store.has(put.digest), false);
    await assert.rejects(store.openRead(put.digest), (e: unknown) => (e as { code?: string }).code === "not_found");
  });

  test("size limit is enforced mid-stream and leaves no temp file", async () => {
    const store = new BlobStore(await freshDir("store"));
    let produced = 0;
    // An endless source: the limit, not the end of the data, must stop the write.
    const endless = new Readable({
      read() {
        produced += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024, 1));
      },
    });
    await assert.rejects(store.putStream(endless, { maxBytes: 1_000_000 }), (e: unknown) => e instanceof PayloadTooLargeError && e.status === 413);
    assert.ok(produced < 4_000_000, `read ${produced} bytes before stopping`);
    assert.deepEqual(await readdir(join(store.root, "blobs", "sha256")), []);
  });

  test("expectedDigest mismatch stores nothing", async () => {
    const store = new BlobStore(await freshDir("store"));
    await assert.rejects(store.putStream(Readable.from([Buffer.from("a")]), { expectedDigest: digestOfBuffer("b") }), (e: unknown) => (e as { code?: string }).code === "integrity");
    assert.deepEqual(await readdir(join(store.root, "blobs", "sha256")), []);
  });
});

describe("extractSafely on a well-formed package", () => {
  test("reproduces the tree, read-only, exec bits kept, from a file or a stream", async () => {
    const tree = await makeTree();
    const out = await freshDir("out");
    await packDirectoryToFile(tree, join(out, "p.tgz"));
    for (const [name, source] of [["from-file", join(out, "p.tgz")], ["from-stream", Readable.from([await readFile(join(out, "p.tgz"))])]] as const) {
      const dest = join(out, name);
      const result = await extractSafely(source, dest);
      assert.equal(result.path, dest);
      assert.equal(result.entries, 9);
      assert.equal(await readFile(join(dest, "lib", "deep", "data.txt"), "utf8"), "x".repeat(10_000));
      assert.equal(await readFile(join(dest, "lib", "café.txt"), "utf8"), "accent\n");
      assert.equal(await readFile(join(dest, "lib", `${"n".repeat(150)}.txt`), "utf8"), "long name\n");
      assert.equal(await readlink(join(dest, "data-link")), "lib/deep/data.txt");
      assert.equal((await lstat(join(dest, "bin", "server"))).mode & 0o7777, 0o555);
      assert.equal((await lstat(join(dest, "README"))).mode & 0o7777, 0o444);
      assert.equal((await lstat(join(dest, "lib"))).mode & 0o7777, 0o555);
      assert.equal((await lstat(dest)).mode & 0o7777, 0o555);
    }
    // GNU tar agrees on the content.
    const gnu = join(out, "gnu");
    await mkdir(gnu);
    execFileSync("tar", ["-xzf", join(out, "p.tgz"), "-C", gnu]);
    execFileSync("diff", ["-r", gnu, join(out, "from-file")]);
  });

  test("refuses an existing destination and leaves it alone", async () => {
    const tree = await makeTree();
    const out = await freshDir("out");
    await packDirectoryToFile(tree, join(out, "p.tgz"));
    await mkdir(join(out, "dest"));
    await writeFile(join(out, "dest", "keep"), "mine");
    await assert.rejects(extractSafely(join(out, "p.tgz"), join(out, "dest")), (e: unknown) => (e as { code?: string }).code === "conflict");
    assert.equal(await readFile(join(out, "dest", "keep"), "utf8"), "mine");
  });

  test("a failing beforeCommit leaves no partial result", async () => {
    const tree = await makeTree();
    const out = await freshDir("out");
    await packDirectoryToFile(tree, join(out, "p.tgz"));
    await assert.rejects(
      extractSafely(join(out, "p.tgz"), join(out, "dest"), {}, {
        beforeCommit: () => {
          throw new Error("digest mismatch");
        },
      }),
      /digest mismatch/,
    );
    assert.deepEqual((await readdir(out)).sort(), ["p.tgz"]);
  });

  test("removeReadOnlyTree removes an extracted package", async () => {
    const tree = await makeTree();
    const out = await freshDir("out");
    await packDirectoryToFile(tree, join(out, "p.tgz"));
    await extractSafely(join(out, "p.tgz"), join(out, "x"));
    await removeReadOnlyTree(join(out, "x"));
    assert.deepEqual(await readdir(out), ["p.tgz"]);
    await rm(join(out, "p.tgz"));
  });
});
