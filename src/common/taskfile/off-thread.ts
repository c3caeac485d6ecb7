/**
 * parseTaskFile for a server's event loop: bodies of INLINE_BELOW characters
 * or more are parsed in a worker thread, so a large task file cannot stall
 * every other request (and the ZooKeeper session pings) for the hundreds of
 * milliseconds its parse takes. The answer is the one parseTaskFile gives:
 * the same spec, or a ValidationError with the same issues and message.
 *
 * The pool is at most POOL_SIZE long-lived workers, started on first use,
 * unref()ed so they never keep a process alive; each runs one parse at a time
 * and the rest wait in order. A worker that dies or overruns its parse's
 * deadline is terminated and a new one takes its place on the next parse.
 */
import { Worker } from "node:worker_threads";
import { errorFromWire, InternalError, ValidationError, type InputIssue, type WireError } from "../errors.js";
import type { JobSpec } from "../types.js";
import { parseTaskFile, type ParseTaskFileOptions } from "./index.js";

/**
 * Below this many characters a parse holds the event loop about a millisecond
 * (a few on a loaded machine: the parse grows faster than the text), less than
 * a worker round trip adds to the request.
 */
export const INLINE_BELOW = 4 * 1024;
/** A parse of the largest accepted body takes about a second on a loaded machine; ten times that is a stuck worker. */
export const PARSE_DEADLINE_MS = 10_000;
const POOL_SIZE = 2;

/** What the main thread sends the worker (parse-worker.ts). */
export interface ParseRequest {
  text: string;
  opts: ParseTaskFileOptions;
}

/** What the worker answers: the spec, the issues of a ValidationError, or any other error as its envelope. */
export type ParseReply = { spec: JobSpec } | { issues: InputIssue[] } | { error: WireError; status: number };

export interface OffThreadLimits {
  inlineBelow?: number;
  deadlineMs?: number;
}

interface Parse {
  req: ParseRequest;
  deadlineMs: number;
  resolve: (spec: JobSpec) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  current?: { parse: Parse; timer: NodeJS.Timeout };
}

const slots: Slot[] = [];
const waiting: Parse[] = [];

/** parseTaskFile, off the caller's event loop when the text is large. */
export async function parseTaskFileOffThread(input: string, opts: ParseTaskFileOptions = {}, limits: OffThreadLimits = {}): Promise<JobSpec> {
  if (input.length < (limits.inlineBelow ?? INLINE_BELOW)) return parseTaskFile(input, opts);
  return new Promise<JobSpec>((resolve, reject) => {
    waiting.push({ req: { text: input, opts }, deadlineMs: limits.deadlineMs ?? PARSE_DEADLINE_MS, resolve, reject });
    dispatch();
  });
}

function dispatch(): void {
  while (waiting.length > 0) {
    const slot = slots.find((s) => s.current === undefined) ?? (slots.length < POOL_SIZE ? spawn() : undefined);
    if (!slot) return;
    const parse = waiting.shift()!;
    const timer = setTimeout(() => {
      const message = `took longer than ${parse.deadlineMs / 1000} s to parse: send a smaller or simpler task file`;
      retire(slot, new ValidationError([{ field: "", message }], parse.req.opts.source));
    }, parse.deadlineMs);
    // The deadline timer, not the worker, keeps the process alive while a parse is in flight.
    slot.current = { parse, timer };
    slot.worker.postMessage(parse.req);
  }
}

function spawn(): Slot {
  const worker = new Worker(new URL("./parse-worker.js", import.meta.url));
  const slot: Slot = { worker };
  worker.on("message", (reply: ParseReply) => settle(slot, reply));
  worker.on("error", (e) => retire(slot, new InternalError(`task-file parser worker failed: ${e.message}`, e)));
  worker.on("exit", (code) => retire(slot, new InternalError(`task-file parser worker exited (code ${code})`)));
  worker.unref();
  slots.push(slot);
  return slot;
}

function settle(slot: Slot, reply: ParseReply): void {
  const current = slot.current;
  if (!current) return;
  clearTimeout(current.timer);
  slot.current = undefined;
  const { parse } = current;
  if ("spec" in reply) parse.resolve(reply.spec);
  else if ("issues" in reply) parse.reject(new ValidationError(reply.issues, parse.req.opts.source));
  else parse.reject(errorFromWire(reply.error, reply.status));
  dispatch();
}

/** Takes a worker out of the pool for good, failing its parse with `err`; the next dispatch starts a fresh one. */
function retire(slot: Slot, err: Error): void {
  const at = slots.indexOf(slot);
  if (at < 0) return;
  slots.splice(at, 1);
  if (slot.current) {
    clearTimeout(slot.current.timer);
    slot.current.parse.reject(err);
    slot.current = undefined;
  }
  void slot.worker.terminate();
  dispatch();
}
