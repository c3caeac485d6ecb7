import type { Context } from "koa";
import getRawBody from "raw-body";
import { PayloadTooLargeError, ValidationError } from "../common/errors.js";
import { decodeUtf8 } from "../common/utf8.js";

/** Reads the request body as UTF-8 text (strictly: a bad byte is a 400 naming its line), enforcing a size limit. */
export async function readText(ctx: Context, limit: number): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await getRawBody(ctx.req, { limit, length: ctx.get("content-length") || undefined });
  } catch (e) {
    const err = e as { type?: string; status?: number };
    if (err.type === "entity.too.large" || err.status === 413) throw new PayloadTooLargeError(limit);
    throw new ValidationError([{ field: "", message: `cannot read request body: ${(e as Error).message}` }]);
  }
  return decodeUtf8(bytes, "the request body");
}

/** Reads the request body as JSON; an empty body is `{}`. */
export async function readJson(ctx: Context, limit: number): Promise<unknown> {
  const text = await readText(ctx, limit);
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ValidationError([{ field: "", message: `request body is not valid JSON: ${(e as Error).message}` }]);
  }
}
