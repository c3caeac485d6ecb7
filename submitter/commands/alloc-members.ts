/** How `torca status` shows an alloc's members (docs/allocs.md): one row each, under the alloc's instance. */
import type { MemberStatus } from "../../src/common/types.js";
import { state, table } from "../format.js";

/** The exit column of a member: its code (or reason), marked when it was OOM-killed. */
export function memberExit(m: MemberStatus): string {
  if (!m.exit) return "-";
  const code = m.exit.exitCode ?? m.exit.reason;
  return m.exit.oomKilled ? `${code} (oom-killed)` : String(code);
}

/** Rows for the task table of `torca status JOB`: "  ↳ name", state, exit and why, aligned with the instance's columns. */
export function memberRows(members: MemberStatus[] | undefined, columns: number): string[][] {
  return (members ?? []).map((m) => {
    const row = Array.from({ length: columns }, () => "");
    row[0] = `  ↳ ${m.name}`;
    row[1] = state(m.state);
    row[4] = memberExit(m);
    row[columns - 1] = m.exit?.reason ?? "";
    return row;
  });
}

/** The member table of `torca status JOB/INDEX`. */
export function memberTable(members: MemberStatus[]): string {
  return table(["member", "state", "exit", "reason"], members.map((m) => [m.name, state(m.state), memberExit(m), m.exit?.reason ?? ""]));
}
