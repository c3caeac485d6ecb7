/**
 * Members for alloc tests (docs/allocs.md) whose memory use the test steers:
 * one holds more than a third of the alloc's memory, one idles, one waits for
 * the file `push` in the alloc's shared dir and then allocates until the
 * kernel stops it. The pusher ends up the largest member when the alloc hits
 * its limit (512 − ~230 held − baselines leaves it ~250 MiB), so the kernel's
 * OOM killer, which picks the largest process under the limit, picks it.
 */
import type { MemberLaunch } from "../../agent/driver/driver.js";

export const ALLOC_MEMBERS_MIB = { alloc: 512, held: 190 };

const NODE = process.execPath;

export function holdMember(name: string): MemberLaunch {
  const js = `const b = Buffer.alloc(${ALLOC_MEMBERS_MIB.held} * 1048576, 1); console.log("held"); setInterval(() => b[0]++, 1000);`;
  return { name, command: [NODE, "-e", js], env: {} };
}

export function idleMember(name: string): MemberLaunch {
  return { name, command: ["/bin/sleep", "600"], env: {} };
}

export function pushMember(name: string): MemberLaunch {
  const js = `const fs = require("fs"); const a = []; const t = setInterval(() => { if (!fs.existsSync(process.env.TORCA_ALLOC_DIR + "/push")) return; clearInterval(t); console.log("pushing"); for (;;) a.push(Buffer.alloc(4 * 1048576, 1)); }, 100);`;
  return { name, command: [NODE, "-e", js], env: {} };
}
