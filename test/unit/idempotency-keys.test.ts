/**
 * Idempotency-Key rules, specified: what a repeated key on POST /v1/jobs
 * gets. No ZooKeeper, no clock.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ValidationError } from "../../src/common/errors.js";
import { bodyHashOf, checkIdempotencyKey, classifyRepeat, idempotencyId, type IdempotencyRecord } from "../../src/manager/idempotency/keys.js";

const DAY = 24 * 3600_000;
const T0 = 1_700_000_000_000;
const BODY = bodyHashOf("name: hello\ncommand: [/bin/true]\n");
const ANSWER = { status: 201, body: { id: "hello", epoch: 3 } };

function record(extra: Partial<IdempotencyRecord> = {}): IdempotencyRecord {
  return { bodyHash: BODY, jobId: "hello", createdAt: T0, answer: ANSWER, ...extra };
}

describe("a repeated Idempotency-Key", () => {
  test("never seen: a new submission", () => {
    assert.deepEqual(classifyRepeat(undefined, BODY, T0, DAY), { kind: "new" });
  });

  test("with the same body within the TTL: the first answer again", () => {
    assert.deepEqual(classifyRepeat(record(), BODY, T0 + DAY - 1, DAY), { kind: "replay", answer: ANSWER });
  });

  test("with another body: refused", () => {
    assert.deepEqual(classifyRepeat(record(), bodyHashOf("name: other\n"), T0 + 1000, DAY), { kind: "mismatch" });
  });

  test("after the TTL: new again, whatever the body", () => {
    assert.deepEqual(classifyRepeat(record(), BODY, T0 + DAY, DAY), { kind: "new" });
    assert.deepEqual(classifyRepeat(record(), bodyHashOf("name: other\n"), T0 + DAY, DAY), { kind: "new" });
  });

  test("recorded but never answered (the primary died): answered for the job it names", () => {
    assert.deepEqual(classifyRepeat(record({ answer: undefined }), BODY, T0 + 5000, DAY), { kind: "unanswered", jobId: "hello" });
  });
});

describe("keys", () => {
  test("are scoped by namespace", () => {
    assert.notEqual(idempotencyId("k-1", "default"), idempotencyId("k-1", "team-a"));
    assert.equal(idempotencyId("k-1", "default"), idempotencyId("k-1", "default"));
  });

  test("are stored hashed, as a znode name", () => {
    assert.match(idempotencyId("../../etc", "default"), /^[0-9a-f]{64}$/);
  });

  test("must be 1-255 visible ASCII characters", () => {
    assert.equal(checkIdempotencyKey("0b6f3c1e-8a51-4b3e-9f61-2f0d3c1a9b7e"), "0b6f3c1e-8a51-4b3e-9f61-2f0d3c1a9b7e");
    for (const bad of ["", "a b", "x".repeat(256), "clé"]) assert.throws(() => checkIdempotencyKey(bad), ValidationError, JSON.stringify(bad));
  });
});
