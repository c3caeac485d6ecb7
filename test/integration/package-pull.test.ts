import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, readdir, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PackageCache } from "../../agent/packages/cache.js";
import { BlobStore } from "../../src/storage/blob-store.js";
import { isDigest } from "../../src/storage/digest.js";
import { packDirectory } from "../../src/storage/pack.js";
import { removeReadOnlyTree } from "../../src/storage/tree.js";

/*
 * The whole path a package takes: a tree packed (as `torca push` does), stored
 * in the shared blob store, served by managers from that store over HTTP, and
 * pulled by an agent's cache, with a manager that dies mid-transfer.
 */

const TOKEN = "integration-token";
const scratch = await mkdtemp(join(tmpdir(), "torca-pull-"));
const servers: Server[] = [];
after(async () => {
  for (const s of servers) s.close();
  await removeReadOnlyTree(scratch);
});

interface Manager {
  url: string;
  requests: number;
  /** Cut the connection after this many body bytes on the next request for `cutDigest`. */
  cutAfter?: number;
  cutDigest?: string;
}

async function startManager(store: BlobStore): Promise<Manager> {
  const state: Manager = { url: "", requests: 0 };
  const server = createServer((req, res) => {
    state.requests += 1;
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
    const digest = /^\/v1\/blobs\/(.+)$/.exec(req.url ?? "")?.[1];
    if (!isDigest(digest)) return void res.writeHead(404).end();
    void store.stat(digest).then(async (st) => {
      if (!st) return void res.writeHead(404).end();
      res.writeHead(200, { "content-length": st.size });
      // Only the named blob's transfer is cut: which of two concurrent pulls reaches this manager first is a race.
      const cut = digest === state.cutDigest ? state.cutAfter : undefined;
      if (cut !== undefined) state.cutAfter = undefined;
      let sent = 0;
      for await (const chunk of await store.openRead(digest)) {
        const buf = chunk as Buffer;
        if (cut !== undefined && sent + buf.length > cut) {
          res.write(buf.subarray(0, cut - sent));
          // A manager dying mid-transfer.
          res.socket?.destroy();
          return;
        }
        sent += buf.length;
        if (!res.write(buf)) await new Promise((resolve) => res.once("drain", resolve));
      }
      res.end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

async function makeTree(name: string, megabytes: number): Promise<string> {
  const dir = join(scratch, name);
  await mkdir(join(dir, "bin"), { recursive: true });
  await writeFile(join(dir, "bin", "run"), `#!/bin/sh\necho ${name}\n`, { mode: 0o755 });
  for (let i = 0; i < megabytes; i++) await writeFile(join(dir, `chunk-${i}`), i % 2 === 0 ? randomBytes(1 << 20) : Buffer.alloc(1 << 20, i));
  await symlink("bin/run", join(dir, "start"));
  return dir;
}

describe("package pull, end to end", () => {
  test("pack → shared store → HTTP managers → agent cache, surviving a manager that dies mid-transfer", async () => {
    const store = new BlobStore(join(scratch, "shared"));
    const treeA = await makeTree("app-a", 8);
    const treeB = await makeTree("app-b", 3);
    const a = await store.putStream(packDirectory(treeA), { maxBytes: 64 << 20 });
    const b = await store.putStream(packDirectory(treeB), { maxBytes: 64 << 20 });

    const flaky = await startManager(store);
    const steady = await startManager(store);
    flaky.cutAfter = Math.floor(a.size / 2);
    flaky.cutDigest = a.digest;

    const cacheDir = join(scratch, "agent-cache");
    const cache = new PackageCache({
      cacheDir,
      maxBytes: 1024 ** 3,
      sources: { managerUrls: () => [flaky.url, steady.url], token: TOKEN },
      retryDelayMs: 1,
    });
    // Two packages at once, several tasks each.
    const results = await Promise.all([a.digest, b.digest, a.digest, b.digest, a.digest].map((d) => cache.ensure(d)));
    const pathA = results[0] as string;
    const pathB = results[1] as string;
    execFileSync("diff", ["-r", treeA, pathA]);
    execFileSync("diff", ["-r", treeB, pathB]);
    assert.equal(execFileSync(join(pathA, "start"), { encoding: "utf8" }), "app-a\n");

    const s = cache.stats();
    assert.equal(s.extractions, 2);
    assert.equal(s.misses, 2);
    assert.equal(s.integrityFailures, 0);
    // Full copies of both arrived (plus whatever of the cut transfer the client had read before the cut).
    assert.ok(s.bytesFromHttp >= a.size + b.size, `bytes ${s.bytesFromHttp}`);
    assert.equal(flaky.requests + steady.requests, 3);
    // Nothing half-extracted remains.
    assert.deepEqual((await readdir(join(cacheDir, "packages"))).sort(), [a.digest.slice(7), b.digest.slice(7)].sort());

    // Second pull of both: nothing on the wire.
    const before = cache.stats().bytesTransferred;
    await cache.ensure(a.digest);
    await cache.ensure(b.digest);
    assert.equal(cache.stats().bytesTransferred, before);
    await cache.close();
  });
});
