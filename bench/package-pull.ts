import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PackageCache } from "../agent/packages/cache.js";
import { BlobStore } from "../src/storage/blob-store.js";
import { isDigest } from "../src/storage/digest.js";
import { packDirectoryToFile } from "../src/storage/pack.js";
import { removeReadOnlyTree } from "../src/storage/tree.js";

/**
 * P8: pulling a 100 MB package over HTTP from a (local) manager, verifying its
 * digest and unpacking it safely, against plain `tar xzf` of the same file;
 * and the bytes a second pull transfers (target 0).
 */

export const PACKAGE_BYTES = 100 * 1024 * 1024;
const FILE_BYTES = 2 * 1024 * 1024;
const RUNS = 3;
const TOKEN = "bench-token";

/** Half incompressible (random) files, half text that compresses like logs or source. */
export async function generatePackage(dir: string): Promise<void> {
  await mkdir(join(dir, "lib"), { recursive: true });
  const words = ["alpha", "beta", "gamma", "delta", "request", "handler", "config", "value", "error", "retry"];
  for (let i = 0; i * FILE_BYTES < PACKAGE_BYTES; i++) {
    const name = join(dir, i % 4 === 0 ? "." : "lib", `part-${String(i).padStart(3, "0")}.${i % 2 === 0 ? "bin" : "txt"}`);
    if (i % 2 === 0) {
      await writeFile(name, randomBytes(FILE_BYTES));
    } else {
      const lines: string[] = [];
      let size = 0;
      for (let l = 0; size < FILE_BYTES; l++) {
        const line = `${l} ${words[l % words.length]} ${words[(l * 7) % words.length]} id=${Math.floor(Math.random() * 1e6)} ok\n`;
        lines.push(line);
        size += line.length;
      }
      await writeFile(name, lines.join("").slice(0, FILE_BYTES));
    }
  }
}

function tarExtract(file: string, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("tar", ["-xzf", file, "-C", dest], { stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`tar exited with ${code}`))));
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

export async function benchPackagePull(): Promise<Record<string, number | string>> {
  const work = await mkdtemp(join(tmpdir(), "torca-bench-pull-"));
  const server = createServer((req, res) => {
    const m = /^\/v1\/blobs\/(.+)$/.exec(req.url ?? "");
    const digest = m?.[1];
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
    if (!isDigest(digest)) return void res.writeHead(404).end();
    const path = store.pathOf(digest);
    res.writeHead(200, { "content-type": "application/octet-stream" });
    createReadStream(path, { highWaterMark: 1 << 20 }).pipe(res);
  });
  const store = new BlobStore(join(work, "storage"));
  try {
    const src = join(work, "src");
    await generatePackage(src);
    const tgz = join(work, "package.tar.gz");
    const { digest, size } = await packDirectoryToFile(src, tgz);
    await store.putStream(createReadStream(tgz));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const pullMs: number[] = [];
    const tarMs: number[] = [];
    let secondPullBytes = 0;
    let secondPullMs = 0;
    for (let run = 0; run < RUNS; run++) {
      const cache = new PackageCache({ cacheDir: join(work, `cache-${run}`), maxBytes: 1024 ** 3, sources: { managerUrls: () => [url], token: TOKEN } });
      await cache.open();
      const t0 = performance.now();
      await cache.ensure(digest);
      pullMs.push(performance.now() - t0);
      const before = cache.stats().bytesTransferred;
      const t1 = performance.now();
      await cache.ensure(digest);
      secondPullMs = performance.now() - t1;
      secondPullBytes = cache.stats().bytesTransferred - before;
      await cache.close();
      await removeReadOnlyTree(join(work, `cache-${run}`));

      const dest = join(work, `tar-${run}`);
      await mkdir(dest);
      const t2 = performance.now();
      await tarExtract(tgz, dest);
      tarMs.push(performance.now() - t2);
      await removeReadOnlyTree(dest);
    }
    const pull = median(pullMs);
    const tar = median(tarMs);
    return {
      package_bytes: PACKAGE_BYTES,
      blob_bytes: size,
      digest,
      pull_verify_unpack_ms: Math.round(pull),
      tar_xzf_ms: Math.round(tar),
      pull_vs_tar_ratio: Math.round((pull / tar) * 100) / 100,
      second_pull_bytes_transferred: secondPullBytes,
      second_pull_ms: Math.round(secondPullMs * 100) / 100,
    };
  } finally {
    server.close();
    await removeReadOnlyTree(work);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchPackagePull();
  for (const [name, value] of Object.entries(result)) console.log(`${name}: ${value}`);
}
