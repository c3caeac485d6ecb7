import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Bearer secrets and their digests. A secret is 256 random bits (64 hex
 * characters); only its SHA-256 digest is ever stored or compared, so a copy
 * of the token store (or of a daemon's verifier) lets nobody authenticate.
 */

export function newSecret(): string {
  return randomBytes(32).toString("hex");
}

/** The SHA-256 digest of a secret, as 64 hex characters. */
export function digestOf(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Constant-time equality of two hex digests of equal length. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
