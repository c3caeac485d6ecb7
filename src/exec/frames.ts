/**
 * The exec wire protocol. What to run travels in the upgrade request's
 * `Torca-Exec` header (base64url JSON, ExecStartSchema), so the manager checks
 * and records it before relaying; after the upgrade (`Upgrade: torca-exec/1`)
 * both directions carry frames of [type: u8][length: u32 big-endian][payload]:
 * the client sends STDIN chunks and STDIN_EOF, the agent answers with
 * STDOUT/STDERR chunks and ends with EXIT or ERROR. The manager relays the
 * bytes between the two without reading them.
 */
import { Transform, type TransformCallback } from "node:stream";
import { z } from "zod";
import { ValidationError } from "../common/errors.js";
import { parseBody } from "../common/protocol.js";

export const EXEC_PROTOCOL = "torca-exec/1";

export const EXEC_HEADER = "torca-exec";
/** The header's decoded JSON is at most this long (request headers are bounded by the server). */
export const MAX_EXEC_HEADER_JSON = 8 * 1024;

export const FRAME = {
  STDIN: 0x02,
  STDIN_EOF: 0x03,
  STDOUT: 0x11,
  STDERR: 0x12,
  EXIT: 0x13,
  ERROR: 0x14,
} as const;
export type FrameType = (typeof FRAME)[keyof typeof FRAME];

/** A frame's payload is at most this long; longer output is sent as several frames. */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;
const HEADER = 5;

export interface Frame {
  type: number;
  payload: Buffer;
}

/** What to run, in the Torca-Exec header. */
export const ExecStartSchema = z
  .object({
    command: z.array(z.string().max(64 * 1024)).min(1, "command is empty").max(1024),
    /** Run under a pseudo-terminal (stdout and stderr merged, like ssh -t). */
    tty: z.boolean().default(false),
    /** The terminal's size, when tty. */
    rows: z.number().int().min(1).max(1000).optional(),
    cols: z.number().int().min(1).max(1000).optional(),
    /** $TERM for the command, when tty. */
    term: z.string().regex(/^[A-Za-z0-9._+-]{1,64}$/, "must be a terminal name such as xterm-256color").optional(),
  })
  .strict();
export type ExecStart = z.output<typeof ExecStartSchema>;

export const ExecExitSchema = z.object({ exitCode: z.number().int().nullable(), signal: z.string().nullable() }).strict();
export type ExecExit = z.output<typeof ExecExitSchema>;

export function encodeFrame(type: FrameType, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  if (body.length > MAX_FRAME_PAYLOAD) throw new RangeError(`exec frame payload of ${body.length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  const header = Buffer.alloc(HEADER);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/** Splits `data` into frames of at most MAX_FRAME_PAYLOAD bytes each. */
export function encodeData(type: FrameType, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += MAX_FRAME_PAYLOAD) out.push(encodeFrame(type, data.subarray(at, at + MAX_FRAME_PAYLOAD)));
  return out;
}

/** Bytes in, frames out (object mode); a frame announcing more than MAX_FRAME_PAYLOAD is an error. */
export class FrameDecoder extends Transform {
  private buffered: Buffer = Buffer.alloc(0);

  constructor() {
    super({ readableObjectMode: true });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= HEADER) {
      const length = this.buffered.readUInt32BE(1);
      if (length > MAX_FRAME_PAYLOAD) return done(new RangeError(`exec frame of ${length} bytes exceeds ${MAX_FRAME_PAYLOAD}`));
      if (this.buffered.length < HEADER + length) break;
      const frame: Frame = { type: this.buffered.readUInt8(0), payload: this.buffered.subarray(HEADER, HEADER + length) };
      this.buffered = this.buffered.subarray(HEADER + length);
      this.push(frame);
    }
    done();
  }
}

export function encodeExecHeader(start: ExecStart): string {
  return Buffer.from(JSON.stringify(start), "utf8").toString("base64url");
}

/** The header's request, validated; a missing or malformed header is a ValidationError naming it. */
export function decodeExecHeader(value: string | string[] | undefined): ExecStart {
  const field = EXEC_HEADER;
  if (typeof value !== "string" || value === "") throw new ValidationError([{ field, message: "is missing (base64url JSON: {command, tty})" }]);
  const json = Buffer.from(value, "base64url").toString("utf8");
  if (json.length > MAX_EXEC_HEADER_JSON) throw new ValidationError([{ field, message: `is longer than ${MAX_EXEC_HEADER_JSON} bytes` }]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ValidationError([{ field, message: "is not base64url-encoded JSON" }]);
  }
  return parseBody(ExecStartSchema, parsed);
}
