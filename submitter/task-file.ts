import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { ValidationError } from "../src/common/errors.js";
import { parseTaskFile } from "../src/common/taskfile/index.js";
import { decodeUtf8 } from "../src/common/utf8.js";

/** Reads and validates a task file before it is sent, so errors name the file, field, line and column. */
export function readTaskFile(file: string): { text: string; contentType: string } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new ValidationError([{ field: "FILE", message: `cannot read ${file}: ${(e as Error).message}` }]);
  }
  const text = decodeUtf8(bytes, basename(file));
  parseTaskFile(text, { source: basename(file) });
  return { text, contentType: file.endsWith(".json") ? "application/json" : "application/yaml" };
}
