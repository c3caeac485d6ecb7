/**
 * The worker side of off-thread.ts: parses each task file it is sent and
 * answers the spec, or the issues of the ValidationError (rebuilt on the main
 * thread, whose message is a function of issues and source), or any other
 * error as its wire envelope.
 */
import { parentPort } from "node:worker_threads";
import { toTorcaError, ValidationError } from "../errors.js";
import type { ParseRequest, ParseReply } from "./off-thread.js";
import { parseTaskFile } from "./index.js";

function parse(req: ParseRequest): ParseReply {
  try {
    return { spec: parseTaskFile(req.text, req.opts) };
  } catch (e) {
    if (e instanceof ValidationError) return { issues: e.issues };
    const err = toTorcaError(e);
    return { error: err.toJSON(), status: err.status };
  }
}

parentPort?.on("message", (req: ParseRequest) => parentPort?.postMessage(parse(req)));
