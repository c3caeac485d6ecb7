/** Rules about alloc members shared by the agent, the manager and the CLI (docs/allocs.md). */
import { NotFoundError, ValidationError } from "./errors.js";

/**
 * Which member's logs: an alloc's members each have their own, so the caller
 * names one (as `nomad alloc logs ALLOC TASK` does); a plain task takes none.
 */
export function checkLogMember(taskId: string, members: readonly string[] | undefined, member: string | undefined): void {
  if (members && member === undefined) {
    throw new ValidationError([{ field: "member", message: `task ${taskId} is an alloc: name one of its tasks (${members.join(", ")}), e.g. torca logs ${taskId} --member ${members[0]}` }]);
  }
  if (member !== undefined && !members?.includes(member)) throw new NotFoundError(`task ${JSON.stringify(member)} of alloc`, taskId);
}
