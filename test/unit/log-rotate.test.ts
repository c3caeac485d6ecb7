import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, writeFile, access } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogRotator, rotateIfLarger } from "../../agent/logs/rotate.js";
import { never, until } from "../harness/wait.js";

const dir = await mkdtemp(join(tmpdir(), "torca-rotate-"));
after(() => rm(dir, { recursive: true, force: true }));

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

describe("rotateIfLarger", () => {
  test("leaves a file at or below the limit alone", async () => {
    const p = join(dir, "small");
    await writeFile(p, "12345");
    assert.equal(await rotateIfLarger(p, 5, 3), false);
    assert.equal(await readFile(p, "utf8"), "12345");
    assert.equal(await exists(`${p}.1`), false);
  });

  test("a missing file is not an error", async () => {
    assert.equal(await rotateIfLarger(join(dir, "missing"), 1, 3), false);
  });

  test("copies to .1, truncates, shifts older files and keeps only `keep` of them", async () => {
    const p = join(dir, "stdout");
    for (const gen of ["a", "b", "c", "d"]) {
      await writeFile(p, gen.repeat(20));
      assert.equal(await rotateIfLarger(p, 10, 2), true);
      assert.equal(await readFile(p, "utf8"), "");
    }
    assert.equal(await readFile(`${p}.1`, "utf8"), "d".repeat(20));
    assert.equal(await readFile(`${p}.2`, "utf8"), "c".repeat(20));
    assert.equal(await exists(`${p}.3`), false);
  });

  test("keep = 0 only truncates", async () => {
    const p = join(dir, "nokeep");
    await writeFile(p, "x".repeat(50));
    assert.equal(await rotateIfLarger(p, 10, 0), true);
    assert.equal(await readFile(p, "utf8"), "");
    assert.equal(await exists(`${p}.1`), false);
  });

  test("an O_APPEND writer keeps writing at the start of the truncated file (no hole)", async () => {
    const p = join(dir, "appended");
    const fh = await open(p, "a");
    try {
      await fh.write("x".repeat(100));
      await rotateIfLarger(p, 10, 1);
      await fh.write("after");
    } finally {
      await fh.close();
    }
    assert.equal(await readFile(p, "utf8"), "after");
    assert.equal(await readFile(`${p}.1`, "utf8"), "x".repeat(100));
  });
});

describe("LogRotator", () => {
  test("rotates registered files periodically until stopped", async () => {
    const a = join(dir, "ra");
    const b = join(dir, "rb");
    await writeFile(a, "1".repeat(30));
    await writeFile(b, "short");
    const errors: string[] = [];
    const r = new LogRotator({ maxBytes: 10, keep: 1, intervalMs: 20, onError: (p) => errors.push(p) });
    r.add(a);
    r.add(b);
    r.add(join(dir, "not-there"));
    r.start();
    try {
      await until(`${a} rotated`, () => exists(`${a}.1`), { intervalMs: 20 });
      assert.equal(await readFile(`${a}.1`, "utf8"), "1".repeat(30));
      assert.equal(await readFile(b, "utf8"), "short");
    } finally {
      await r.stop();
    }
    await writeFile(a, "2".repeat(30));
    // Five rotation intervals after stop(): the oversized file is left alone.
    await never("a rotation after stop()", async () => (await readFile(a, "utf8")) !== "2".repeat(30), 100, { intervalMs: 20 });
    assert.deepEqual(errors, []);
  });

  test("runOnce reports per-file errors and goes on with the others", async () => {
    const good = join(dir, "good");
    await writeFile(good, "g".repeat(30));
    // A path below a regular file: stat fails with ENOTDIR, which is an error (unlike a missing file).
    const broken = join(good, "child");
    const errors: string[] = [];
    const r = new LogRotator({ maxBytes: 10, keep: 1, intervalMs: 1000, onError: (p) => errors.push(p) });
    r.add(broken);
    r.add(good);
    await r.runOnce();
    assert.deepEqual(errors, [broken]);
    assert.equal(await readFile(`${good}.1`, "utf8"), "g".repeat(30));
  });
});
