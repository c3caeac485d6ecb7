/**
 * The lifecycle of an alloc's members, pure (docs/allocs.md):
 *
 * - the alloc instance runs while its members run;
 * - a member that fails (non-zero exit, a signal, OOM, or a lost exit status)
 *   fails the alloc's attempt: the others are stopped, and the restart policy
 *   applies to the alloc as a whole;
 * - a member that exits 0 ends alone; the alloc ends with exit 0 once every
 *   member has exited 0 (a batch alloc succeeds when all its tasks do).
 *
 * The member whose failure ended the attempt is the cause; its exit (OOM
 * included) becomes the alloc's, named after it. Members the alloc stopped
 * because of the cause are never a cause themselves.
 */
import type { ExitInfo } from "../../src/common/types.js";

export interface MemberOutcome {
  name: string;
  /** Absent while the member runs. */
  exit?: ExitInfo;
  /** The alloc stopped this member because another one failed. */
  stoppedByAlloc?: boolean;
}

export type AllocStep =
  | { kind: "wait" }
  /** `cause` failed while others still run: stop them. */
  | { kind: "stop-others"; cause: string }
  | { kind: "exited"; exit: ExitInfo };

export function memberFailed(exit: ExitInfo): boolean {
  return exit.exitCode !== 0 || exit.signal !== null || exit.oomKilled;
}

/** `members` in the order their exits became known: the first failure is the cause. */
export function allocStep(members: readonly MemberOutcome[]): AllocStep {
  const cause = members.find((m) => m.exit !== undefined && !m.stoppedByAlloc && memberFailed(m.exit));
  const running = members.some((m) => m.exit === undefined);
  if (running) return cause ? { kind: "stop-others", cause: cause.name } : { kind: "wait" };
  if (cause) return { kind: "exited", exit: allocExitOf(cause.name, cause.exit!) };
  return { kind: "exited", exit: { exitCode: 0, signal: null, oomKilled: false, reason: `exit 0 (all ${members.length} tasks)` } };
}

/** The alloc's exit when member `name` failed with `exit`: the same figures, the reason names the member. */
export function allocExitOf(name: string, exit: ExitInfo): ExitInfo {
  return { ...exit, reason: `task ${name}: ${exit.reason}` };
}

/** How a member the alloc stopped reports its own exit. */
export function stoppedMemberExit(exit: ExitInfo, cause: string): ExitInfo {
  return { ...exit, reason: `stopped after task ${cause} failed (${exit.reason})` };
}
