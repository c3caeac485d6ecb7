import { chmod, lstat, readdir, rm } from "node:fs/promises";
import { join } from "node:path";

/**
 * Removes a tree that may have been made read-only (extracted packages are
 * 0555/0444): a non-root owner cannot unlink entries of a directory without
 * write permission, so directories are made writable on the way down first.
 */
export async function removeReadOnlyTree(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (st.isDirectory()) {
    const stack = [path];
    while (stack.length > 0) {
      const dir = stack.pop() as string;
      await chmod(dir, 0o700);
      for (const d of await readdir(dir, { withFileTypes: true })) {
        if (d.isDirectory()) stack.push(join(dir, d.name));
      }
    }
  }
  await rm(path, { recursive: true, force: true });
}

/** Sum of the sizes of the regular files under `path` (symlinks not followed). */
export async function treeFileBytes(path: string): Promise<number> {
  let total = 0;
  const stack = [path];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const d of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) stack.push(p);
      else if (d.isFile()) total += (await lstat(p)).size;
    }
  }
  return total;
}
