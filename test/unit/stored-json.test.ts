import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readRecord, readRecordSync, RECORD_FILES, recordFileOf } from "../../agent/tasks/record.js";
import { IntegrityError } from "../../src/common/errors.js";
import { readJson, readJsonFileIfValid, readJsonIfValid, sameJson } from "../../src/common/json.js";
import { AgentAdSchema } from "../../src/common/protocol.js";
import { LeaderInfoSchema, NodeAdminSchema, SessionCredentialsSchema } from "../../src/common/schemas/coord.js";
import { PackageRecordSchema } from "../../src/common/schemas/packages.js";
import { JobSchema, TaskInstanceSchema } from "../../src/common/schemas/state.js";
import { decodeEndpointRecord } from "../../naming/layout.js";

/*
 * Stored JSON (znode payloads, the agent's local state files) is read once at
 * the border through its schema: a corrupt or foreign payload is an
 * IntegrityError naming where it came from and the field that is wrong, and
 * each reader either fails with it or skips the payload with a warning.
 */

const digest = `sha256:${"a".repeat(64)}`;
const task = { id: "web/0", jobId: "web", index: 0, run: 0, desired: "run", state: "running", attempt: 2, restartsOnNode: 0, migrations: 0, nodeId: "n1", createdAt: 1, updatedAt: 2, events: [{ at: 1, type: "x", message: "m" }] };
const job = { id: "web", spec: { name: "web", command: ["/bin/true"] }, source: "", status: "running", desired: "run", submittedAt: 1, updatedAt: 1 };
const ad = { id: "n1", url: "http://127.0.0.1:7401", host: "127.0.0.1", capacity: { cpu: 2, memory: 1, disk: 1 }, allocatable: { cpu: 2, memory: 1, disk: 1 }, attributes: {}, portRange: [41000, 41010], drivers: { lxc: false, process: true }, startedAt: 1 };

/** The IntegrityError that reading `data` with `schema` throws. */
function integrityErrorOf(read: () => unknown): IntegrityError {
  try {
    read();
  } catch (e) {
    assert.ok(e instanceof IntegrityError, `expected an IntegrityError, got ${String(e)}`);
    return e;
  }
  return assert.fail("the payload was accepted");
}

describe("stored JSON is read through its schema", () => {
  test("a payload that is not JSON names where it came from", () => {
    const e = integrityErrorOf(() => readJson(TaskInstanceSchema, Buffer.from("{not json"), "/torca/jobs/web/tasks/0"));
    assert.match(e.message, /^\/torca\/jobs\/web\/tasks\/0: not valid JSON/);
  });

  test("task instances: a wrong field is named with its path; unknown fields are kept", () => {
    const e = integrityErrorOf(() => readJson(TaskInstanceSchema, JSON.stringify({ ...task, state: "sleeping" }), "/torca/jobs/web/tasks/0"));
    assert.match(e.message, /^\/torca\/jobs\/web\/tasks\/0: state: /);
    assert.equal(e.context.field, "state");
    const nested = integrityErrorOf(() => readJson(TaskInstanceSchema, JSON.stringify({ ...task, events: [{ at: "yesterday" }] }), "t"));
    assert.equal(nested.context.field, "events.0.at");
    assert.deepEqual(readJson(TaskInstanceSchema, JSON.stringify({ ...task, addedLater: 1 }), "t"), { ...task, addedLater: 1 });
  });

  test("jobs: a foreign payload (an agent ad) is refused; the spec is trusted as validated at submission", () => {
    assert.equal(integrityErrorOf(() => readJson(JobSchema, JSON.stringify(ad), "/torca/jobs/web")).context.field, "spec");
    assert.equal(integrityErrorOf(() => readJson(JobSchema, JSON.stringify({ ...job, spec: [] }), "j")).context.field, "spec");
    assert.deepEqual(readJson(JobSchema, JSON.stringify(job), "j"), job);
  });

  test("leader and node admin state: wrong types are refused", () => {
    assert.equal(integrityErrorOf(() => readJson(LeaderInfoSchema, JSON.stringify({ id: "m1", url: "http://m1", epoch: "3", since: 1 }), "/torca/leader")).context.field, "epoch");
    assert.equal(readJson(LeaderInfoSchema, JSON.stringify({ id: "m1", url: "http://m1", epoch: 3, since: 1 }), "l").epoch, 3);
    assert.equal(integrityErrorOf(() => readJson(NodeAdminSchema, JSON.stringify({ drain: "yes" }), "/torca/nodes/n1")).context.field, "drain");
  });

  test("agent ads: a skipping reader gets undefined and is told why", () => {
    const told: string[] = [];
    assert.equal(readJsonIfValid(AgentAdSchema, JSON.stringify({ ...ad, portRange: [1] }), "/torca/agents/n1", (e) => told.push(e.message)), undefined);
    assert.equal(readJsonIfValid(AgentAdSchema, "\u0000garbage", "/torca/agents/n1", (e) => told.push(e.message)), undefined);
    assert.equal(told.length, 2);
    assert.match(told[0]!, /^\/torca\/agents\/n1: portRange/);
    assert.equal(readJsonIfValid(AgentAdSchema, JSON.stringify(ad), "a")?.id, "n1");
  });

  test("naming endpoints: a foreign payload is skipped", () => {
    assert.equal(decodeEndpointRecord(Buffer.from(JSON.stringify(task)), "/torca/naming/default/web/x"), undefined);
  });

  test("package records: older records read with size 0; a record without a digest is skipped", () => {
    assert.deepEqual(readJson(PackageRecordSchema, JSON.stringify({ digest }), "p"), { digest, size: 0, pushedAt: 0 });
    assert.equal(integrityErrorOf(() => readJson(PackageRecordSchema, JSON.stringify({ digest: "md5:1", size: 1 }), "/torca/packages/a/1")).context.field, "digest");
  });

  test("the agent's saved session: a file of another shape is refused", () => {
    assert.equal(integrityErrorOf(() => readJson(SessionCredentialsSchema, JSON.stringify({ clientId: 12, password: "ab" }), "zk-session.json")).context.field, "clientId");
    assert.deepEqual(readJson(SessionCredentialsSchema, JSON.stringify({ clientId: "1f0a", password: "00ff" }), "s"), { clientId: "1f0a", password: "00ff" });
  });

  describe("agent task records on disk", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "torca-record-"));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    test("a local state file: missing reads as none, corrupt as none with the reason told", async () => {
      const told: string[] = [];
      const path = join(dir, "zk-session.json");
      assert.equal(readJsonFileIfValid(SessionCredentialsSchema, path, (e) => told.push(e.message)), undefined);
      assert.equal(told.length, 0, "a missing file is no corruption");
      await writeFile(path, JSON.stringify({ sessionId: "1f", endpoints: [] }));
      assert.equal(readJsonFileIfValid(SessionCredentialsSchema, path, (e) => told.push(e.message)), undefined);
      assert.equal(told.length, 1);
      assert.match(told[0]!, new RegExp(`^${path}: clientId`));
    });

    test("a corrupt record is skipped with a warning naming the file and field; a good one reads back", async () => {
      const warnings: string[] = [];
      const log = { warn: (o: { err: Error }) => warnings.push(o.err.message) } as unknown as Parameters<typeof readRecord>[1];
      const bad = join(dir, "bad");
      await mkdir(bad);
      await writeFile(join(bad, RECORD_FILES[0]), JSON.stringify({ dispatch: { epoch: 1 }, state: "running", dir: bad, ports: {} }));
      assert.equal(await readRecord(bad, log), undefined);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, new RegExp(`^${join(bad, RECORD_FILES[0])}: dispatch\\.`));
      assert.equal(await readRecord(join(dir, "missing"), log), undefined);
      assert.equal(warnings.length, 1, "a missing record is no warning");
      const good = join(dir, "good");
      await mkdir(good);
      // An evicted attempt's exit, with its final usage: both are reported by a restarted agent that still owes the exit.
      const record = { dispatch: { epoch: 1, taskId: "web/0", jobId: "web", index: 0, attempt: 1, spec: { command: ["/bin/true"], env: {}, resources: { cpu: 1, memory: 0, disk: 0 }, ports: [] } }, state: "exited", dir: good, ports: {}, exit: { exitCode: null, signal: "SIGKILL", oomKilled: false, reason: "killed by SIGKILL" }, finalUsage: { cpuNs: 1_500_000, memoryPeakBytes: 4096 }, evicted: "cpu needed" };
      await writeFile(join(good, RECORD_FILES[0]), JSON.stringify(record));
      assert.deepEqual(await readRecord(good, log), record);
    });

    test("a record's writes alternate between its two files: the newest that reads is the record, so a write cut short leaves the one before", async () => {
      const warnings: string[] = [];
      const log = { warn: (o: { err: Error }) => warnings.push(o.err.message) } as unknown as Parameters<typeof readRecord>[1];
      const rec = join(dir, "alternating");
      await mkdir(rec);
      const base = { dispatch: { epoch: 1, taskId: "web/0", jobId: "web", index: 0, attempt: 1, spec: { command: ["/bin/true"], env: {}, resources: { cpu: 1, memory: 0, disk: 0 }, ports: [] } }, dir: rec, ports: {} };
      const write = (seq: number, state: string) => writeFile(recordFileOf(rec, seq), JSON.stringify({ ...base, state, seq }));
      await write(0, "starting");
      assert.equal((await readRecord(rec, log))?.state, "starting");
      await write(1, "running");
      assert.equal((await readRecord(rec, log))?.state, "running", "write 1 went to the other file and is newer");
      await write(2, "exited");
      assert.equal(recordFileOf(rec, 2), join(rec, RECORD_FILES[0]), "write 2 overwrote the first file");
      assert.equal((await readRecord(rec, log))?.state, "exited");
      // Cut short after the truncation: the record is the write before it, and nothing is wrong.
      await writeFile(recordFileOf(rec, 3), "");
      assert.deepEqual([(await readRecord(rec, log))?.state, readRecordSync(rec, log)?.state], ["exited", "exited"]);
      await writeFile(recordFileOf(rec, 3), '{"dispatch":');
      assert.equal((await readRecord(rec, log))?.seq, 2);
      assert.deepEqual(warnings, [], "a cut-short file beside a good one is no warning");
      await writeFile(recordFileOf(rec, 2), "{");
      assert.equal(await readRecord(rec, log), undefined, "no file reads: no record");
      assert.equal(warnings.length, 2, "and each file's fault is told");
      // Written by an agent before the alternation: record.json alone, without a sequence number.
      const old = join(dir, "before-alternation");
      await mkdir(old);
      await writeFile(join(old, RECORD_FILES[0]), JSON.stringify({ ...base, dir: old, state: "running" }));
      assert.equal((await readRecord(old, log))?.state, "running");
    });
  });
});

describe("sameJson: equal as JSON documents, without making them", () => {
  test("agrees with JSON.stringify up to key order, undefined keys counting as absent", () => {
    const rec = { id: "j/0", state: "running", events: [{ at: 1, type: "started", message: "ok" }], ports: { http: 8080 }, exit: null };
    assert.equal(sameJson(rec, JSON.parse(JSON.stringify(rec))), true);
    assert.equal(sameJson(rec, { ...rec, reason: undefined }), true);
    assert.equal(sameJson({ b: 1, a: 2 }, { a: 2, b: 1 }), true);
  });

  test("any difference in a value, a nested value, a key or an array's length is a difference", () => {
    const rec = { id: "j/0", events: [{ at: 1, type: "started" }], ports: { http: 8080 } };
    assert.equal(sameJson(rec, { ...rec, id: "j/1" }), false);
    assert.equal(sameJson(rec, { ...rec, events: [{ at: 2, type: "started" }] }), false);
    assert.equal(sameJson(rec, { ...rec, events: [...rec.events, { at: 2, type: "exited" }] }), false);
    assert.equal(sameJson(rec, { ...rec, extra: 0 }), false);
    assert.equal(sameJson({ a: [] }, { a: {} }), false);
    assert.equal(sameJson({ a: null }, { a: {} }), false);
    assert.equal(sameJson({ a: 1 }, { b: 1 }), false);
  });
});
