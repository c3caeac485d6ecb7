/** What a task runs: `package`, `command` (argv) and `env`. */
import type { PackageRef } from "../../types.js";
import type { Checker } from "../checks.js";
import { describe, isPlainObject } from "../describe.js";
import type { Path } from "../issues.js";

/** Package names and versions: one rule for referring (here) and pushing (src/manager/packages/registry.ts). */
export const PACKAGE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,127}$/;
/** "." and ".." are not versions: to ZooKeeper, where name@version is recorded, they mean "here" and "up". */
export const PACKAGE_VERSION_RE = /^(?!\.\.?$)[A-Za-z0-9._+-]{1,128}$/;
const PACKAGE_DIGEST_RE = /^sha256:([0-9a-fA-F]{64})$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkPackage(c: Checker, v: unknown, path: Path): { ref: PackageRef; text: string } | undefined {
  const text = c.string(v, path);
  if (text === undefined) return undefined;
  const named = /^([^@]*)@([^@]*)$/.exec(text);
  if (named && PACKAGE_NAME_RE.test(named[1]!) && PACKAGE_VERSION_RE.test(named[2]!)) return { ref: { kind: "named", name: named[1]!, version: named[2]! }, text };
  const digest = PACKAGE_DIGEST_RE.exec(text);
  // Digests are compared as strings elsewhere (agent caches, blob store): normalize case once here.
  if (digest) return { ref: { kind: "digest", digest: `sha256:${digest[1]!.toLowerCase()}` }, text };
  const hint = text.startsWith("sha256:")
    ? " (a sha256 digest has exactly 64 hex digits)"
    : !text.includes("@")
      ? " (missing @version)"
      : named && (named[1]!.length > 128 || named[2]!.length > 128)
        ? " (name and version are at most 128 characters each)"
        : "";
  return c.add(path, `${describe(text)} is not a package reference: use name@version (e.g. webapp@1.2.0) or sha256:<64 hex digits>${hint}`);
}

export function checkCommand(c: Checker, v: unknown, path: Path): string[] {
  if (typeof v === "string") {
    // argv only: a shell string would need a shell, and quoting rules would be a guess.
    const words = v.trim().split(/\s+/).filter((w) => w.length > 0);
    const shellish = /[|&;<>()$`\\"'*?]/.test(v);
    const example = `[${(shellish ? ["/bin/sh", "-c", v] : words).map((w) => JSON.stringify(w)).join(", ")}]`;
    c.add(path, `must be a list of arguments (argv), not a string: write command: ${example}`);
    return [];
  }
  const items = c.list(v, path, `["/bin/sleep", "30"]`);
  if (!items) return [];
  if (items.length === 0) {
    c.add(path, `must not be empty: give at least the program to run, e.g. ["/bin/sleep", "30"]`);
    return [];
  }
  const argv = items.map((item, i) => noNul(c, c.scalarString(item, [...path, i]), [...path, i]) ?? "");
  if (typeof items[0] === "string" && items[0].trim() === "") c.add([...path, 0], "the program (first argument) must not be empty");
  return argv;
}

/** Arguments and environment reach the kernel as C strings: a NUL would end them early (exec refuses them outright). */
function noNul(c: Checker, s: string | undefined, path: Path): string | undefined {
  if (s === undefined || !s.includes("\0")) return s;
  return c.add(path, `contains a NUL character (\\0), which a program's arguments and environment cannot hold`);
}

export function checkEnv(c: Checker, v: unknown, path: Path): Record<string, string> {
  const env: Record<string, string> = {};
  if (!isPlainObject(v)) {
    c.add(path, `must be a mapping of NAME: value, got ${describe(v)}`);
    return env;
  }
  for (const [key, val] of Object.entries(v)) {
    const at = [...path, key];
    if (!ENV_KEY_RE.test(key)) {
      c.add(at, `${JSON.stringify(key)} is not a valid environment variable name (letters, digits and _, not starting with a digit)`, "key");
      continue;
    }
    if (key === "__proto__") {
      // Assigning it would change the prototype of the env object instead of adding a variable.
      c.add(at, `"__proto__" is not allowed as an environment variable name`, "key");
      continue;
    }
    if (key.startsWith("TORCA_")) {
      c.add(at, `${key} is reserved: Torca sets TORCA_* variables itself`, "key");
      continue;
    }
    if (val === null || val === undefined) {
      c.add(at, `has no value (use "" for an empty string)`);
      continue;
    }
    const s = noNul(c, c.scalarString(val, at), at);
    if (s !== undefined) env[key] = s;
  }
  return env;
}
