#!/usr/bin/env node
// Runs the compiled test suites with node's test runner (its summary reports pass/fail counts).
// Unit tests first (fast, no processes), then integration and browser tests, one file at a time:
// the integration files start whole cells, and two at once on a 2-core machine turn timing into flakiness.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const chaos = process.argv.includes("--chaos");
const partitions = process.argv.includes("--partitions");
const root = new URL("..", import.meta.url).pathname;
const suites = chaos ? ["dist/test/chaos"] : partitions ? ["dist/test/partitions"] : ["dist/test/unit", "dist/test/integration", "dist/test/e2e"];

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith(".test.js") ? [p] : [];
  });
}

const list = suites.flatMap((s) => files(join(root, s))).sort();
if (list.length === 0) {
  console.error("no test files found; did the build run?");
  process.exit(1);
}
// The state store freezes the task records it stores, so a change in place fails a test (src/coord/state-store.ts).
const env = { ...process.env, TORCA_FREEZE_TASK_RECORDS: "1" };
const r = spawnSync(process.execPath, ["--enable-source-maps", "--test", "--test-concurrency=1", "--test-timeout=300000", ...list], { stdio: "inherit", cwd: root, env });
process.exit(r.status ?? 1);
