import { PassThrough } from "node:stream";
import type { Context } from "koa";
import type { ClusterEvent, EventBus } from "../events.js";

const KEEPALIVE_MS = 15_000;

/** Streams cluster events as server-sent events until the client goes away. */
export function streamEvents(ctx: Context, bus: EventBus, filter?: (e: ClusterEvent) => boolean): void {
  ctx.req.socket.setTimeout(0);
  ctx.req.socket.setNoDelay(true);
  ctx.set({ "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive", "X-Accel-Buffering": "no" });
  const stream = new PassThrough();
  ctx.status = 200;
  ctx.body = stream;
  stream.write(": connected\n\n");
  const onEvent = (e: ClusterEvent) => {
    if (filter && !filter(e)) return;
    stream.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
  };
  const keepAlive = setInterval(() => stream.write(": keep-alive\n\n"), KEEPALIVE_MS);
  bus.on("event", onEvent);
  const close = () => {
    clearInterval(keepAlive);
    bus.off("event", onEvent);
    stream.end();
  };
  ctx.req.on("close", close);
  ctx.req.on("error", close);
}
