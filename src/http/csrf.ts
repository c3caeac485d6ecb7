import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * CSRF protection of the pages' forms. A page session is a cookie holding the
 * bearer token (src/http/auth.ts), which a browser sends with any request to
 * the manager; SameSite=Strict keeps other sites from sending it, and the
 * forms' token is the second lock: an HMAC of the session's token, which a
 * page of another origin can neither read (the cookie is HttpOnly, the page
 * is not readable cross-origin) nor compute. It is a pure function of the
 * session, so every manager of the cell accepts the forms of every other, and
 * it changes when the session does (log in with another token).
 */

/** The form field carrying the token. */
export const CSRF_FIELD = "csrf";

const PURPOSE = "torca-pages-csrf-v1";

/** The CSRF token of a session, for the forms of its pages. */
export function csrfToken(sessionToken: string): string {
  return createHmac("sha256", sessionToken).update(PURPOSE).digest("base64url");
}

/** True when `presented` is the CSRF token of this session (compared in constant time). */
export function csrfValid(sessionToken: string | undefined, presented: string | null | undefined): boolean {
  if (!sessionToken || typeof presented !== "string" || presented.length === 0) return false;
  const want = Buffer.from(csrfToken(sessionToken));
  const got = Buffer.from(presented);
  return got.length === want.length && timingSafeEqual(got, want);
}
