/**
 * Which syntax a task file is written in. A file is read as JSON when it is
 * named *.json, when the caller says so, or when it starts with `{` or `[` and
 * is valid JSON; a file that starts with `{` but is only valid as YAML (a flow
 * mapping, `{name: x}`) is read as YAML.
 */
import { LineCounter } from "yaml";
import { ValidationError, type InputIssue } from "../errors.js";
import { composeYaml } from "./yaml-hardening.js";

export interface ParseTaskFileOptions {
  /** File name, used as the prefix of error messages. */
  source?: string;
  /** Default: JSON when the source name ends in .json or the text starts with `{`/`[`, else YAML. */
  format?: "yaml" | "json";
}

export interface SniffedFormat {
  /** The caller or the file name said JSON: syntax errors are reported as JSON errors. */
  explicitJson: boolean;
  /** The text parsed as JSON, kept for the rare JSON text the YAML parser rejects. */
  jsonValue?: { value: unknown };
}

/** Throws the JSON syntax error when the text must be JSON and is not. */
export function sniffFormat(text: string, opts: ParseTaskFileOptions): SniffedFormat {
  const explicitJson = opts.format === "json" || (opts.format === undefined && /\.json$/i.test(opts.source ?? ""));
  const looksJson = opts.format === undefined && /^\s*[{[]/.test(text);
  if (!explicitJson && !looksJson) return { explicitJson };
  try {
    return { explicitJson, jsonValue: { value: JSON.parse(text) as unknown } };
  } catch (e) {
    // Only a detected-by-content file gets a second chance as YAML, so that real JSON files get JSON error messages.
    const yamlOk = !explicitJson && composeYaml(text, new LineCounter(), opts.source).errors.length === 0;
    if (!yamlOk) throw new ValidationError([jsonSyntaxIssue(text, e)], opts.source);
    return { explicitJson };
  }
}

function jsonSyntaxIssue(text: string, e: unknown): InputIssue {
  const raw = e instanceof Error ? e.message : String(e);
  const m = /at position (\d+)/.exec(raw);
  const message = `invalid JSON: ${raw.replace(/\s*in JSON at position \d+.*$/s, "").replace(/\s*\(line \d+ column \d+\)$/, "")}`;
  if (!m) {
    // "Unexpected end of JSON input" has no position: the problem is at the end.
    return { field: "", message, ...endPosition(text) };
  }
  const offset = Number(m[1]);
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return { field: "", message, line, column };
}

function endPosition(text: string): { line: number; column: number } {
  const lines = text.split("\n");
  return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}
