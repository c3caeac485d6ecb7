import { isUtf8 } from "node:buffer";
import { ValidationError } from "./errors.js";

/**
 * Strict UTF-8 decoding for text that users send (task files, request bodies).
 * A replacing decoder would turn a bad byte into U+FFFD and carry on, so a
 * command argument or environment value could silently differ from the file;
 * here it is refused with the line and column of the first bad byte.
 */
export function decodeUtf8(bytes: Buffer, what: string): string {
  if (isUtf8(bytes)) return new TextDecoder("utf-8").decode(bytes);
  const offset = firstInvalidByte(bytes);
  const before = bytes.subarray(0, offset);
  const lineStart = before.lastIndexOf(0x0a) + 1;
  const line = before.filter((b) => b === 0x0a).length + 1;
  const column = new TextDecoder("utf-8").decode(bytes.subarray(lineStart, offset)).length + 1;
  const byte = `0x${bytes[offset]!.toString(16).padStart(2, "0")}`;
  throw new ValidationError([{ field: "", message: `${what} is not valid UTF-8: byte ${byte} (at offset ${offset}) does not begin a well-formed character`, line, column }]);
}

/** Offset of the first byte that does not start or continue a well-formed UTF-8 sequence (RFC 3629). */
function firstInvalidByte(b: Buffer): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c < 0x80) n = 0;
    else if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      // No overlong forms (E0 80..9F) and no surrogates (ED A0..BF).
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      // No overlong forms (F0 80..8F) and nothing above U+10FFFF (F4 90..BF).
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || cc < (k === 1 ? lo : 0x80) || cc > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return b.length;
}
