/**
 * Idempotent submission, pure: what a repeated `Idempotency-Key` on
 * `POST /v1/jobs` gets. The first answer is repeated (same job, same status)
 * for the TTL; the same key with another body is refused; once expired the
 * key is new again.
 *
 * A record is written before the job (holding the job's id) and completed
 * with the answer after it, so a primary that dies between the two leaves a
 * record without an answer: the retry then finds the job it created and
 * answers for it, instead of a 409 for a job that is "already live".
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ValidationError } from "../../common/errors.js";

export const IdempotencyRecordSchema = z
  .object({
    bodyHash: z.string(),
    jobId: z.string(),
    createdAt: z.number(),
    /** Absent until the submission's answer is known. */
    answer: z.object({ status: z.number().int(), body: z.record(z.unknown()) }).strict().optional(),
  })
  .strict();
export type IdempotencyRecord = z.infer<typeof IdempotencyRecordSchema>;
export type IdempotentAnswer = NonNullable<IdempotencyRecord["answer"]>;

/** Visible ASCII, 1-255 characters (a UUID fits; so do the keys other clients send). */
const KEY_RE = /^[\x21-\x7e]{1,255}$/;

export function checkIdempotencyKey(key: string): string {
  if (!KEY_RE.test(key)) throw new ValidationError([{ field: "Idempotency-Key", message: "must be 1-255 visible ASCII characters, e.g. a UUID" }]);
  return key;
}

/** The znode name of a key: keys are scoped by namespace, and never stored as given. */
export function idempotencyId(key: string, namespace: string): string {
  return createHash("sha256").update(`${namespace}\n${key}`).digest("hex");
}

export function bodyHashOf(body: string): string {
  return createHash("sha256").update(body).digest("hex");
}

export function isExpired(createdAt: number, now: number, ttlMs: number): boolean {
  return now - createdAt >= ttlMs;
}

export type Repeat =
  /** Never seen (or expired): submit, and remember the answer. */
  | { kind: "new" }
  /** Answered before: the same answer again. */
  | { kind: "replay"; answer: IdempotentAnswer }
  /** Seen, but its primary died before answering: the job, if it was created, is the answer. */
  | { kind: "unanswered"; jobId: string }
  /** The key answered another body. */
  | { kind: "mismatch" };

export function classifyRepeat(record: IdempotencyRecord | undefined, bodyHash: string, now: number, ttlMs: number): Repeat {
  if (!record || isExpired(record.createdAt, now, ttlMs)) return { kind: "new" };
  if (record.bodyHash !== bodyHash) return { kind: "mismatch" };
  return record.answer ? { kind: "replay", answer: record.answer } : { kind: "unanswered", jobId: record.jobId };
}
