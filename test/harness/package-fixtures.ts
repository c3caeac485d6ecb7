/**
 * Packages for package-cache tests: a scratch directory removed after the
 * file's tests (read-only unpacked trees included), fresh directories in it,
 * and packed trees with content unique to a label, as the store would hold them.
 */
import { after } from "node:test";
import type { Server } from "node:http";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { digestOfBuffer, type Digest } from "../../src/storage/digest.js";
import { packDirectory } from "../../src/storage/pack.js";
import { removeReadOnlyTree } from "../../src/storage/tree.js";

export interface PackageFixtures {
  scratch: string;
  /** HTTP servers a test started; closed after the file's tests. */
  servers: Server[];
  freshDir(name: string): Promise<string>;
  /** A packed tree with a `label` file, `bin/start` printing the label, and `fileBytes` bytes of content unique to it. */
  makePackage(label: string, fileBytes?: number): Promise<{ digest: Digest; blob: Buffer }>;
}

export async function bufferOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function packageFixtures(prefix: string): Promise<PackageFixtures> {
  const scratch = await mkdtemp(join(tmpdir(), `${prefix}-`));
  const servers: Server[] = [];
  after(async () => {
    for (const s of servers) s.close();
    await removeReadOnlyTree(scratch);
  });
  let counter = 0;
  const freshDir = async (name: string) => {
    const dir = join(scratch, `${name}-${++counter}`);
    await mkdir(dir, { recursive: true });
    return dir;
  };
  const makePackage = async (label: string, fileBytes = 1000) => {
    const dir = await freshDir(`pkg-${label}`);
    await mkdir(join(dir, "bin"));
    await writeFile(join(dir, "bin", "start"), `#!/bin/sh\necho ${label}\n`, { mode: 0o755 });
    await writeFile(join(dir, "data"), Buffer.alloc(fileBytes, label.charCodeAt(0)));
    await writeFile(join(dir, "label"), label);
    const blob = await bufferOf(packDirectory(dir));
    return { digest: digestOfBuffer(blob), blob };
  };
  return { scratch, servers, freshDir, makePackage };
}
