/**
 * Path rules shared by the packer and the extractor. Archive paths are always
 * relative, '/'-separated, and may not climb: what a tar entry names must land
 * inside the directory it is unpacked into, whatever the archive says.
 */

/** Longest entry path accepted (PATH_MAX on Linux). */
export const MAX_ENTRY_PATH_LENGTH = 4096;

/**
 * Splits an archive path into its components, or returns why it is unsafe.
 * `.` components and repeated or trailing slashes are dropped; an empty result
 * means the archive root itself (`./`).
 */
export function archivePathComponents(path: string): string[] | string {
  if (path.length > MAX_ENTRY_PATH_LENGTH) return `path longer than ${MAX_ENTRY_PATH_LENGTH} characters`;
  if (path.includes("\0")) return "path contains a NUL byte";
  // Backslashes are separators on Windows tar writers; treating them as plain
  // characters would let `..\..\x` through a check written for '/'.
  if (path.includes("\\")) return "path contains a backslash";
  if (path.startsWith("/")) return "absolute path";
  if (/^[a-zA-Z]:/.test(path)) return "absolute path (drive letter)";
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") return "path climbs out with '..'";
    parts.push(part);
  }
  return parts;
}

export type LinkResolution = { inside: true; components: string[] } | { inside: false; reason: string };

/** Hops allowed while following symlinks, as Linux's MAXSYMLINKS. */
const MAX_SYMLINK_HOPS = 40;

/**
 * Resolves `target`, as written in a symlink located in directory `fromDir`
 * (components relative to the root), the way the kernel would: component by
 * component, substituting every symlink met on the way (known from `symlinks`,
 * keyed by joined path). Lexical normalization is not enough: with `d -> .`,
 * the target `d/..` leaves the root although it looks like it stays inside.
 */
export function resolveInsideRoot(fromDir: readonly string[], target: string, symlinks: ReadonlyMap<string, string>): LinkResolution {
  if (target.startsWith("/")) return { inside: false, reason: `absolute target ${JSON.stringify(target)}` };
  if (target.includes("\0")) return { inside: false, reason: "target contains a NUL byte" };
  if (target.includes("\\")) return { inside: false, reason: "target contains a backslash" };
  const stack = [...fromDir];
  const pending = target.split("/").reverse();
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.pop() as string;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (stack.length === 0) return { inside: false, reason: `target ${JSON.stringify(target)} resolves outside the package` };
      stack.pop();
      continue;
    }
    stack.push(part);
    const link = symlinks.get(stack.join("/"));
    if (link === undefined) continue;
    hops += 1;
    if (hops > MAX_SYMLINK_HOPS) return { inside: false, reason: `target ${JSON.stringify(target)} has too many levels of symbolic links` };
    if (link.startsWith("/")) return { inside: false, reason: `target ${JSON.stringify(target)} leads through a symlink to the absolute path ${JSON.stringify(link)}` };
    stack.pop();
    for (const p of link.split("/").reverse()) pending.push(p);
  }
  return { inside: true, components: stack };
}
