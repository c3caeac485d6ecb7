/** `torca exec TASK -- CMD…`: a command in a running task's context, interactive when stdin is a terminal. */
import { constants } from "node:os";
import type { Command } from "commander";
import { errorFromWire, type WireError } from "../../src/common/errors.js";
import { encodeExecHeader, encodeFrame, EXEC_HEADER, ExecExitSchema, FRAME, FrameDecoder, type ExecExit, type Frame } from "../../src/exec/frames.js";
import { withExamples, type CliContext } from "../context.js";

/** The shell's convention: a command killed by signal N exits 128 + N. */
export function exitCodeOf(exit: ExecExit): number {
  if (exit.exitCode !== null) return exit.exitCode;
  const n = exit.signal ? constants.signals[exit.signal as NodeJS.Signals] : undefined;
  return n === undefined ? 1 : 128 + n;
}

export function registerExec(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("exec")
    .description("run a command in a running task's context: its user, working directory, environment and cgroup, or its container (lxc-attach)")
    .argument("<task>", "task id, e.g. web/0 or team:web/0")
    .argument("<command...>", "the command and its arguments, after --")
    .option("-t, --tty", "run under a terminal (default: when stdin is a terminal)")
    .option("-T, --no-tty", "never allocate a terminal")
    .action(async (task: string, command: string[], o: { tty?: boolean }) => {
      const stdin = process.stdin;
      const tty = o.tty ?? stdin.isTTY === true;
      const out = process.stdout;
      const start = { command, tty, ...(tty && out.isTTY ? { rows: out.rows, cols: out.columns } : {}), ...(tty && process.env.TERM && /^[A-Za-z0-9._+-]{1,64}$/.test(process.env.TERM) ? { term: process.env.TERM } : {}) };
      const socket = await ctx.client().upgrade(`/v1/tasks/${encodeURIComponent(task)}/exec`, { [EXEC_HEADER]: encodeExecHeader(start) });
      const raw = tty && stdin.isTTY === true;
      if (raw) stdin.setRawMode(true);
      try {
        stdin.on("data", (chunk: Buffer) => socket.write(encodeFrame(FRAME.STDIN, chunk)));
        stdin.once("end", () => socket.write(encodeFrame(FRAME.STDIN_EOF)));
        const exit = await new Promise<ExecExit>((resolve, reject) => {
          const frames = socket.pipe(new FrameDecoder());
          frames.on("data", (f: Frame) => {
            if (f.type === FRAME.STDOUT) out.write(f.payload);
            else if (f.type === FRAME.STDERR) process.stderr.write(f.payload);
            else if (f.type === FRAME.EXIT) resolve(ExecExitSchema.parse(JSON.parse(f.payload.toString("utf8"))));
            else if (f.type === FRAME.ERROR) reject(errorFromWire(JSON.parse(f.payload.toString("utf8")) as WireError, 500));
          });
          frames.once("error", reject);
          socket.once("close", () => reject(new Error(`the exec session of ${task} ended without an exit status`)));
        });
        process.exitCode = exitCodeOf(exit);
      } finally {
        if (raw) stdin.setRawMode(false);
        stdin.pause();
        socket.destroy();
      }
    });
  withExamples(cmd, ["torca exec web/0 -- sh", "torca exec web/0 -- ls -l", "echo hi | torca exec web/0 -- cat", "torca exec --no-tty web/0 -- cat /proc/self/cgroup"]);
}
