/**
 * How long hostile but accepted input holds the manager's event loop: a task
 * file just under the 256 KiB body limit parsed inline and off-thread (the
 * event loop's longest stall during the off-thread parse, from
 * monitorEventLoopDelay), a typical task file inline and through a worker
 * and one at the inline limit inline (why small files stay inline), and one
 * placement round of a task whose regexp constraint backtracks
 * catastrophically in a backtracking engine.
 *
 * Run directly: `node dist/bench/hostile-input.js` prints `name: value` lines.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseTaskFile } from "../src/common/taskfile/index.js";
import { INLINE_BELOW, parseTaskFileOffThread } from "../src/common/taskfile/off-thread.js";
import { placeTasks } from "../src/manager/scheduler/index.js";
import { makeNode, makeSpec, nodeIds } from "../test/unit/scheduler-harness.js";

/** About 5,000 env keys, just under the manager's 256 KiB body limit. */
function largeTaskFile(): string {
  const lines = ["name: big-env", 'command: ["/bin/true"]', "env:"];
  for (let i = 0; lines.join("\n").length < 250 * 1024; i++) lines.push(`  VAR_${i}: "value number ${i} padded to make it longer"`);
  return lines.join("\n") + "\n";
}

/** A real task file's kind of content, padded with env keys to at least `size` characters. */
function taskFileOfSize(size: number): string {
  const lines: string[] = [];
  for (let i = 0; lines.join("\n").length < size - 400; i++) lines.push(`  SETTING_${i}: "value ${i}"`);
  const env = lines.join("\n");
  return `name: web\ninstances: 3\ncommand: ["/usr/bin/node", "server.js", "--port", "$TORCA_PORT_HTTP"]\nresources: {cpu: 0.5, memory: 512MiB, disk: 1GiB}\nports:\n  - name: http\n    check: {type: http, path: /healthz, interval: 10s, timeout: 2s}\nconstraints:\n  - {attribute: os, operator: "=", value: linux}\nenv:\n${env}\n`;
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The median of `runs` timings of `fn`, in milliseconds. */
async function medianMs(runs: number, fn: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function offThreadMaxBlockMs(text: string): Promise<number> {
  await parseTaskFileOffThread(text); // starts the worker, so the figure is the steady state
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  await parseTaskFileOffThread(text);
  delay.disable();
  return delay.max / 1e6;
}

function pathologicalRegexpPlacementMs(): number {
  const nodes = nodeIds(1_000).map((id) => makeNode(id, { attributes: { kernel: "6.8.0-1019-aws-x" } }));
  const spec = makeSpec("regexp", { constraints: [{ attribute: "kernel", operator: "regexp", value: "^(.*?)*(.*?)*(.*?)*(.*?)*!$" }] });
  const started = performance.now();
  placeTasks([{ taskId: "regexp/0", jobId: "regexp", spec }], { nodes, allocations: [] }, { seed: 1 });
  return performance.now() - started;
}

export async function benchHostileInput(): Promise<Record<string, number>> {
  const large = largeTaskFile();
  const typical = taskFileOfSize(2 * 1024);
  const atLimit = taskFileOfSize(INLINE_BELOW);
  return {
    parse_2KiB_inline_ms: round(await medianMs(50, () => parseTaskFile(typical)), 3),
    parse_2KiB_offthread_round_trip_ms: round(await medianMs(50, () => parseTaskFileOffThread(typical, {}, { inlineBelow: 0 })), 3),
    [`parse_${INLINE_BELOW / 1024}KiB_inline_limit_inline_ms`]: round(await medianMs(50, () => parseTaskFile(atLimit)), 3),
    parse_250KiB_inline_ms: round(await medianMs(5, () => parseTaskFile(large))),
    parse_250KiB_offthread_event_loop_max_block_ms: round(await offThreadMaxBlockMs(large)),
    plan_pathological_regexp_1000_nodes_ms: round(pathologicalRegexpPlacementMs()),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await benchHostileInput();
  for (const [name, value] of Object.entries(results)) console.log(`${name}: ${value}`);
}
