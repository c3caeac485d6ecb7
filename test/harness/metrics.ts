import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export const PROMTOOL = "/usr/bin/promtool";

/** One sample of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The families (from `# TYPE`) and samples of a text exposition. */
export function parseExposition(text: string): { families: Map<string, string>; samples: Sample[] } {
  const families = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) families.set(type[1]!, type[2]!);
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { families, samples };
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** Runs promtool with `args`, `input` on stdin; fails the test with promtool's own words. */
export function promtool(args: string[], input?: string): string {
  assert.ok(existsSync(PROMTOOL), `${PROMTOOL} is missing: install the Debian package prometheus (scripts/setup.sh does)`);
  const r = spawnSync(PROMTOOL, args, { input, encoding: "utf8" });
  assert.equal(r.status, 0, `promtool ${args.join(" ")} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}
