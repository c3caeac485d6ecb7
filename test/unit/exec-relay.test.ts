import assert from "node:assert/strict";
import { Duplex } from "node:stream";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Writable } from "node:stream";
import { relayCommand } from "../../agent/http/exec.js";
import { createLogger } from "../../src/common/logger.js";

const quiet = createLogger("exec-relay-test", {}, { destination: new Writable({ write: (_c, _e, done) => done() }), level: "fatal" });

/** A client connection that never reads what it is sent (its writes are never acknowledged) and sends nothing. */
function stalledClient(): Duplex {
  const socket = new Duplex({ highWaterMark: 16 * 1024, read() {}, write() {} });
  socket.on("error", () => undefined);
  return socket;
}

describe("torca exec on the agent: the relay between a command and its client", () => {
  test("a command writing without end to a client that does not read is paused: the agent buffers about one chunk, not the output", async () => {
    const socket = stalledClient();
    const ended = relayCommand(socket, { file: "/usr/bin/yes", args: ["a line the client never reads"], env: { PATH: "/usr/bin:/bin" } }, quiet);
    // Without backpressure `yes` fills hundreds of MB in this time; paused, the buffer stops at its first full write.
    await sleep(500);
    const buffered = socket.writableLength;
    assert.ok(buffered > 0, "the command's output reached the socket");
    assert.ok(buffered < 1024 * 1024, `the agent holds ${buffered} bytes of output for the client`);
    // The client going away ends the command.
    socket.destroy();
    const exit = await ended;
    assert.ok(exit.signal === "SIGTERM" || exit.signal === "SIGPIPE" || exit.exitCode !== 0, `the command ended: ${JSON.stringify(exit)}`);
  });
});
