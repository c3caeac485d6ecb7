import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { AgentAdSchema, AgentReportSchema } from "../../src/common/protocol.js";
import { TaskInstanceSchema } from "../../src/common/schemas/state.js";
import { compileCheck } from "../../src/common/fast-check.js";

/*
 * The compiled check must accept exactly the values its zod schema accepts
 * and would return unchanged: a record it passes is trusted as parsed.
 */

const record = {
  id: "web/3",
  jobId: "web",
  index: 3,
  run: 0,
  desired: "run",
  state: "running",
  attempt: 1,
  restartsOnNode: 0,
  migrations: 0,
  nodeId: "n1",
  ports: { http: 20001 },
  exit: { exitCode: null, signal: "SIGKILL", oomKilled: true, reason: "oom", extra: 1 },
  usage: { cpuSeconds: 1, memoryByteSeconds: 2, peakMemoryBytes: 3, wallSeconds: 4 },
  createdAt: 1,
  updatedAt: 2,
  events: [{ at: 1, type: "created", message: "created", by: "someone" }],
  devices: [{ name: "nvidia/gpu", ids: ["GPU-1"] }],
  members: [{ name: "app", state: "running" }],
  reclaimed: true,
  addedByANewerWriter: { any: "thing" },
};

/** One change to the record per case: field path and new value (undefined deletes). */
const mutations: [string[], unknown][] = [
  [["index"], -1],
  [["index"], 1.5],
  [["index"], "3"],
  [["id"], ""],
  [["state"], "sleeping"],
  [["desired"], undefined],
  [["nodeId"], undefined],
  [["nodeId"], 7],
  [["ports", "http"], 1.5],
  [["ports"], []],
  [["exit", "exitCode"], 0],
  [["exit", "exitCode"], "0"],
  [["exit", "oomKilled"], "yes"],
  [["usage", "wallSeconds"], undefined],
  [["usage", "unknownKey"], 1],
  [["events"], {}],
  [["events", "0", "at"], null],
  [["events", "0", "message"], undefined],
  [["healthy"], false],
  [["healthy"], 0],
  [["version"], -1],
  [["createdAt"], Number.NaN],
  [["devices", "0", "extra"], 1],
  [["devices", "0", "ids"], Array.from({ length: 65 }, (_, i) => `GPU-${i}`)],
  [["devices", "0", "ids", "0"], ""],
  [["members", "0", "state"], "sleeping"],
  [["members", "0", "more"], 1],
  [["reclaimed"], "yes"],
];

function mutated(path: string[], value: unknown, of: object = record): unknown {
  const copy = structuredClone(of) as Record<string, unknown>;
  let at: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  const last = path.at(-1) as string;
  if (value === undefined) delete at[last];
  else at[last] = value;
  return copy;
}

describe("compiled schema checks", () => {
  const check = compileCheck(TaskInstanceSchema);

  test("the task record schema compiles", () => assert.ok(check));

  test("accept exactly what zod accepts unchanged, for a record and each single change to it", () => {
    for (const [path, value] of [[[], undefined] as [string[], unknown], ...mutations]) {
      const v = path.length ? mutated(path, value) : record;
      const parsed = TaskInstanceSchema.safeParse(v);
      const unchanged = parsed.success && isDeepStrictEqual(parsed.data, v);
      assert.equal(check?.(v), unchanged, `${path.join(".") || "the record"} = ${JSON.stringify(value)}`);
    }
  });

  test("an agent's ad (tuples, defaults) and report compile, and the ad's check is exact", () => {
    assert.ok(compileCheck(AgentReportSchema), "the report schema compiles");
    const adCheck = compileCheck(AgentAdSchema);
    assert.ok(adCheck);
    const ad = {
      id: "n1",
      url: "http://127.0.0.1:1/",
      host: "127.0.0.1",
      capacity: { cpu: 2, memory: 4, disk: 8 },
      allocatable: { cpu: 2, memory: 4, disk: 8 },
      attributes: { zone: "a" },
      portRange: [20000, 29999],
      drivers: { lxc: false, process: true },
      cachedPackages: ["sha256:ab"],
      load: { cpu1m: 0.5, memoryUsed: 1, diskFree: 2 },
      startedAt: 1,
    };
    const adMutations: [string[], unknown][] = [
      [["portRange"], [1, 2, 3]],
      [["portRange"], [1]],
      [["portRange", "0"], "1"],
      [["portRange"], { 0: 1, 1: 2 }],
      // Absent, zod fills in the default: not returned unchanged.
      [["cachedPackages"], undefined],
      [["cachedPackages"], [1]],
      [["load"], undefined],
      [["load", "cpu1m"], "high"],
    ];
    for (const [path, value] of [[[], undefined] as [string[], unknown], ...adMutations]) {
      const v = path.length ? mutated(path, value, ad) : ad;
      const parsed = AgentAdSchema.safeParse(v);
      const unchanged = parsed.success && isDeepStrictEqual(parsed.data, v);
      assert.equal(adCheck(v), unchanged, `${path.join(".") || "the ad"} = ${JSON.stringify(value)}`);
    }
  });

  test("a schema with rules it does not know is not compiled", () => {
    assert.equal(compileCheck(z.object({ at: z.string().email() })), undefined);
    assert.equal(compileCheck(z.object({ n: z.number().refine((n) => n > 1) })), undefined);
    assert.equal(compileCheck(z.object({ d: z.date() })), undefined);
  });
});
