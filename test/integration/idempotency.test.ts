/**
 * Idempotent submission on a real cell: a repeated Idempotency-Key gets the
 * first answer and creates no second job; the same key with another body is
 * refused with 422 naming the key; `torca submit` sends a key of its own.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";

type Answer = { statusCode: number; body: string };

describe("Idempotency-Key on POST /v1/jobs", () => {
  let c: TestCell;
  before(async () => {
    c = await startTestCell({ managers: 1, agents: 1 });
  });
  after(async () => {
    await c?.close();
  });

  const post = async (yaml: string, key?: string): Promise<Answer> => {
    const headers = { "content-type": "application/yaml", ...(key ? { "idempotency-key": key } : {}) };
    const r = await c.api.post(`${await c.primaryUrl()}/v1/jobs`, { body: yaml, headers, throwHttpErrors: false });
    return { statusCode: r.statusCode, body: r.body };
  };

  test("the same key twice: the same answer, one job", async () => {
    const key = randomUUID();
    const yaml = batchJob("once", ["/bin/sleep", "30"]);
    const first = await post(yaml, key);
    assert.equal(first.statusCode, 201, first.body);
    const again = await post(yaml, key);
    assert.equal(again.statusCode, 201, again.body);
    assert.deepEqual(JSON.parse(again.body), JSON.parse(first.body), "the first answer, repeated");
    const j = await c.job("once");
    assert.equal(j.submittedAt, (JSON.parse(first.body) as { job: { submittedAt: number } }).job.submittedAt, "the job of the first submission");
    // Without the key the same body is a new submission of a live job: refused, so the key is what made the repeat safe.
    assert.equal((await post(yaml)).statusCode, 409);
  });

  test("the same key with another body: 422 naming the key", async () => {
    const key = randomUUID();
    assert.equal((await post(batchJob("first-body", ["/bin/true"]), key)).statusCode, 201);
    const other = await post(batchJob("second-body", ["/bin/true"]), key);
    assert.equal(other.statusCode, 422, other.body);
    const err = (JSON.parse(other.body) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, "idempotency_key_reused");
    assert.ok(err.message.includes(key), err.message);
    await assert.rejects(c.job("second-body"), "no job was created for the refused body");
  });

  test("a malformed key is refused before anything is written", async () => {
    const bad = await post(batchJob("bad-key", ["/bin/true"]), "two words");
    assert.equal(bad.statusCode, 400, bad.body);
    await assert.rejects(c.job("bad-key"));
  });
});
