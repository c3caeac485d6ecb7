import { spawn } from "node:child_process";
import type { Duplex } from "node:stream";
import { toTorcaError } from "../../src/common/errors.js";
import type { Logger } from "../../src/common/logger.js";
import { decodeExecHeader, encodeData, encodeFrame, EXEC_HEADER, EXEC_PROTOCOL, FRAME, FrameDecoder, type ExecExit, type ExecStart, type Frame } from "../../src/exec/frames.js";
import type { UpgradeRoute } from "../../src/http/upgrade.js";
import type { ExecCommand } from "../driver/exec.js";
import type { TaskRunner } from "../tasks/runner.js";

/** After the client went away, the command gets this long after SIGTERM before SIGKILL. */
const HANGUP_GRACE_MS = 2000;

/**
 * Runs one exec'd command and relays it over `socket` in frames (src/exec/frames.ts):
 * stdin in, stdout/stderr out, then its exit. The command leads its own
 * process group; when the client goes away first the group is terminated.
 */
export function relayCommand(socket: Duplex, cmd: ExecCommand, log: Logger): Promise<ExecExit> {
  return new Promise<ExecExit>((resolve) => {
    const child = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    let exited = false;
    // Backpressure both ways, so a client that reads slowly (or a command that does not read) costs the agent at
    // most a buffer per stream, not memory without bound: the command's output waits while the socket's buffer is
    // full, and the client's input waits (in TCP) while the command's stdin is.
    const send = (type: typeof FRAME.STDOUT | typeof FRAME.STDERR) => (chunk: Buffer) => {
      if (socket.destroyed) return; // the client is gone: the output is read and dropped until the command ends
      let room = true;
      for (const f of encodeData(type, chunk)) room = socket.write(f) && room;
      if (room || child.stdout.isPaused()) return;
      child.stdout.pause();
      child.stderr.pause();
      socket.once("drain", () => {
        child.stdout.resume();
        child.stderr.resume();
      });
    };
    child.stdout.on("data", send(FRAME.STDOUT));
    child.stderr.on("data", send(FRAME.STDERR));
    child.stdin.on("error", () => undefined); // a command that exits without reading its stdin
    const frames = socket.pipe(new FrameDecoder());
    frames.on("data", (f: Frame) => {
      if (f.type === FRAME.STDIN) {
        if (!child.stdin.write(f.payload)) {
          frames.pause();
          child.stdin.once("drain", () => frames.resume());
        }
      } else if (f.type === FRAME.STDIN_EOF) child.stdin.end();
    });
    frames.on("error", (e) => {
      log.warn({ err: e }, "exec: unreadable frames from the client; ending the session");
      socket.destroy();
    });
    socket.on("close", () => {
      // Paused output would never reach its end, and the command's close waits for it.
      child.stdout.resume();
      child.stderr.resume();
      if (exited || child.pid === undefined) return;
      const group = -child.pid;
      try {
        process.kill(group, "SIGTERM");
      } catch {
        return;
      }
      setTimeout(() => {
        try {
          if (!exited) process.kill(group, "SIGKILL");
        } catch {
          // already gone
        }
      }, HANGUP_GRACE_MS).unref();
    });
    const finish = (exit: ExecExit, error?: Error) => {
      if (exited) return;
      exited = true;
      socket.end(error ? encodeFrame(FRAME.ERROR, JSON.stringify(toTorcaError(error).toJSON())) : encodeFrame(FRAME.EXIT, JSON.stringify(exit)));
      resolve(exit);
    };
    child.once("error", (e) => finish({ exitCode: null, signal: null }, e));
    child.once("close", (code, signal) => finish({ exitCode: code, signal }));
  });
}

/** `POST /v1/tasks/:id/exec` with `Upgrade: torca-exec/1`: the managers' control grant only (they check the caller's). */
export function execRoute(runner: TaskRunner, log: Logger): UpgradeRoute {
  return {
    protocol: EXEC_PROTOCOL,
    pattern: "/v1/tasks/:id/exec",
    grant: "control",
    handle: async (s) => {
      const start: ExecStart = decodeExecHeader(s.headers[EXEC_HEADER]);
      const cmd = runner.execCommand(s.params.id!, start);
      const socket = s.accept();
      const exit = await relayCommand(socket, cmd, log);
      log.info({ task: s.params.id, command: start.command[0], tty: start.tty, ...exit }, "exec ended");
    },
  };
}
