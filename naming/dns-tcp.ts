import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../src/common/logger.js";

/**
 * DNS over TCP framing (RFC 1035 4.2.2, RFC 7766): each message is preceded
 * by its length as two bytes, big-endian; a connection carries any number of
 * queries, answered in the order they came, and is closed after `idleMs`
 * without a complete query. Resolvers come here after a UDP answer with the
 * TC bit, or when asked to (`dig +tcp`).
 */

export interface DnsTcpOptions {
  /** The answer to one query message, or undefined to send none (not DNS). */
  answer(msg: Buffer): Promise<Buffer | undefined>;
  /** Default 10 s (RFC 7766 suggests seconds, not minutes). */
  idleMs?: number;
  /** Connections served at once; one more is closed as soon as it is accepted (default 256). */
  maxConnections?: number;
  logger?: Logger;
}

const MAX_MESSAGE = 0xffff;

export function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(Math.min(msg.length, MAX_MESSAGE));
  return Buffer.concat([len, msg.subarray(0, MAX_MESSAGE)]);
}

/** Splits what arrived into complete messages; returns them and the bytes of an incomplete one. */
export function unframe(buf: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let off = 0;
  while (buf.length - off >= 2) {
    const len = buf.readUInt16BE(off);
    if (buf.length - off - 2 < len) break;
    messages.push(buf.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return { messages, rest: buf.subarray(off) };
}

export class DnsTcpListener {
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly o: DnsTcpOptions) {}

  /** Listens on host:port; rejects (EADDRINUSE and the like) without leaving anything open. */
  async listen(port: number, host: string): Promise<void> {
    const server = createServer((sock) => this.serve(sock));
    server.maxConnections = this.o.maxConnections ?? 256;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (e) => this.o.logger?.warn({ err: e }, "dns tcp listener error"));
    this.server = server;
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.setNoDelay(true);
    sock.setTimeout(this.o.idleMs ?? 10_000, () => sock.destroy());
    sock.on("close", () => this.sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    let pending = Buffer.alloc(0);
    // Answers leave in query order: each waits for the one before it.
    let chain: Promise<void> = Promise.resolve();
    sock.on("data", (chunk: Buffer) => {
      const { messages, rest } = unframe(pending.length ? Buffer.concat([pending, chunk]) : chunk);
      pending = Buffer.from(rest);
      for (const msg of messages) {
        const answering = this.o.answer(Buffer.from(msg));
        chain = chain.then(async () => {
          const out = await answering.catch((e: unknown) => {
            this.o.logger?.warn({ err: e }, "dns answer failed");
            return undefined;
          });
          if (out && !sock.destroyed) sock.write(frame(out));
        });
      }
    });
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}
