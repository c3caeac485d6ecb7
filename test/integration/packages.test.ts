import { runTorca } from "../harness/cli.js";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { batchJob, startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

/**
 * Packages end to end on a real cell (ZooKeeper, two managers, one agent with
 * the process driver): `torca push` through the CLI binary, the registry in
 * ZooKeeper, blobs served by any manager, and a job that runs a script from
 * the unpacked package, pulled once by the agent's cache.
 */

const LIMIT = 256 * 1024;


interface PackageEntry {
  name: string;
  version: string;
  digest: string;
  size: number;
  pushedAt: number;
}

interface CacheStats {
  hits: number;
  misses: number;
  extractions: number;
  bytesTransferred: number;
}

const skip = zookeeperInstalled() ? false : "ZooKeeper is not installed";

describe("packages: push, registry, blobs, and a job running from a package", { skip, timeout: 240_000 }, () => {
  let tc: TestCell;
  let work: string;
  let env: Record<string, string>;
  let backupUrl: string;
  let digest: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "torca-pkg-"));
    tc = await startTestCell({ managerExtra: { packageLimit: `${LIMIT}B` } });
    const primary = await tc.primaryUrl();
    backupUrl = tc.cell.managerUrls.find((u) => u !== primary)!;
    // Through the backup on purpose: the CLI must find the primary for the upload.
    env = { TORCA_MANAGER: backupUrl, TORCA_TOKEN: tc.cell.token };
  });

  after(async () => {
    await tc?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function makePackage(dir: string, greeting: string): void {
    mkdirSync(join(dir, "bin"), { recursive: true });
    mkdirSync(join(dir, "share"), { recursive: true });
    writeFileSync(join(dir, "bin", "run.sh"), '#!/bin/sh\nset -e\necho "demo says: $(cat share/greeting.txt) from $TORCA_TASK"\n');
    chmodSync(join(dir, "bin", "run.sh"), 0o755);
    writeFileSync(join(dir, "share", "greeting.txt"), greeting);
  }

  it("torca push uploads the package and records name@version", async () => {
    const dir = join(work, "demo");
    makePackage(dir, "hello");
    const r = await runTorca(["--json", "push", dir, "--name", "demo", "--version", "1.0"], env);
    assert.equal(r.code, 0, r.stderr);
    const pushed = JSON.parse(r.stdout) as PackageEntry & { created: boolean };
    assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(pushed.created, true);
    assert.ok(pushed.size > 0);
    digest = pushed.digest;

    const list = await runTorca(["--json", "packages"], env);
    assert.equal(list.code, 0, list.stderr);
    const pkgs = JSON.parse(list.stdout) as PackageEntry[];
    assert.deepEqual(pkgs.map((p) => [p.name, p.version, p.digest, p.size]), [["demo", "1.0", digest, pushed.size]]);
    assert.ok(Math.abs(pkgs[0]!.pushedAt - Date.now()) < 60_000);
  });

  it("re-pushing the same content is idempotent; different content for the same version is a conflict", async () => {
    const same = await runTorca(["--json", "push", join(work, "demo"), "--name", "demo", "--version", "1.0"], env);
    assert.equal(same.code, 0, same.stderr);
    const again = JSON.parse(same.stdout) as { digest: string; created: boolean };
    assert.equal(again.digest, digest, "a deterministic pack of the same tree has the same digest");
    assert.equal(again.created, false);

    const other = join(work, "demo-changed");
    makePackage(other, "changed");
    const conflict = await runTorca(["push", other, "--name", "demo", "--version", "1.0"], env);
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /already exists with digest/);

    const fresh = await runTorca(["--json", "push", other, "--name", "demo", "--version", "1.1"], env);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.notEqual((JSON.parse(fresh.stdout) as { digest: string }).digest, digest);

    const r = await tc.api.get(`${backupUrl}/v1/packages`).json<{ packages: PackageEntry[] }>();
    assert.deepEqual(r.packages.map((p) => `${p.name}@${p.version}`), ["demo@1.0", "demo@1.1"]);
    assert.equal(r.packages[0]!.digest, digest, "the conflicting push did not change demo@1.0");
  });

  it("refuses bad names, non-gzip bodies, oversized uploads, writes on a backup, and missing tokens", async () => {
    const primary = await tc.primaryUrl();
    const put = (base: string, path: string, body: Buffer, token: string | undefined = tc.cell.token) =>
      tc.api.put(`${base}${path}`, { body, throwHttpErrors: false, headers: { "content-type": "application/gzip", authorization: token ? `Bearer ${token}` : "" } });
    const gz = Buffer.from([0x1f, 0x8b, 0x08, 0x00]);

    const badName = await put(primary, "/v1/packages/Demo/1.0", gz);
    assert.equal(badName.statusCode, 400);
    assert.equal((JSON.parse(badName.body) as { error: { field: string } }).error.field, "name");
    const badVersion = await put(primary, "/v1/packages/demo/1.0~beta", gz);
    assert.equal(badVersion.statusCode, 400);
    assert.equal((JSON.parse(badVersion.body) as { error: { field: string } }).error.field, "version");
    assert.equal((await put(primary, "/v1/packages/demo/a%2Fb", gz)).statusCode, 400);

    const notGzip = await put(primary, "/v1/packages/demo/2.0", Buffer.from("just text"));
    assert.equal(notGzip.statusCode, 400);
    assert.match(notGzip.body, /not a gzip stream/);

    const big = Buffer.concat([gz, randomBytes(LIMIT)]);
    const tooBig = await put(primary, "/v1/packages/demo/3.0", big);
    assert.equal(tooBig.statusCode, 413);

    const onBackup = await put(backupUrl, "/v1/packages/demo/4.0", gz);
    assert.equal(onBackup.statusCode, 307);
    assert.equal(onBackup.headers.location, `${primary}/v1/packages/demo/4.0`);

    assert.equal((await put(primary, "/v1/packages/demo/5.0", gz, "")).statusCode, 401);

    const r = await tc.api.get(`${primary}/v1/packages`).json<{ packages: PackageEntry[] }>();
    assert.deepEqual(r.packages.map((p) => `${p.name}@${p.version}`), ["demo@1.0", "demo@1.1"], "no refused upload was recorded");
  });

  it("refuses an oversized streamed upload from the CLI and records nothing", async () => {
    const dir = join(work, "huge");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "noise.bin"), randomBytes(4 * LIMIT));
    const r = await runTorca(["push", dir, "--name", "huge", "--version", "1"], env);
    assert.notEqual(r.code, 0);
    const list = await tc.api.get(`${await tc.primaryUrl()}/v1/packages`).json<{ packages: PackageEntry[] }>();
    assert.ok(!list.packages.some((p) => p.name === "huge"));
  });

  it("any manager serves a blob by digest with its length; unknown digests are 404, malformed ones 400", async () => {
    for (const base of tc.cell.managerUrls) {
      const res = await tc.api.get(`${base}/v1/blobs/${digest}`, { responseType: "buffer" });
      assert.equal(res.statusCode, 200);
      assert.equal(Number(res.headers["content-length"]), res.body.length);
      assert.equal(`sha256:${createHash("sha256").update(res.body).digest("hex")}`, digest);
    }
    const absent = `sha256:${"0".repeat(64)}`;
    assert.equal((await tc.api.get(`${backupUrl}/v1/blobs/${absent}`, { throwHttpErrors: false })).statusCode, 404);
    assert.equal((await tc.api.get(`${backupUrl}/v1/blobs/sha256:xyz`, { throwHttpErrors: false })).statusCode, 400);
    assert.equal((await tc.api.get(`${backupUrl}/v1/blobs/${digest}`, { throwHttpErrors: false, headers: { authorization: "" } })).statusCode, 401);
  });

  it("a job with package demo@1.0 runs bin/run.sh from the unpacked package; a second job reuses the cached copy", async () => {
    const agent = tc.cell.daemons.get("agent-1")!;
    const stats = async () => (await tc.api.get(`${agent.url}/v1/status`).json<{ packages: CacheStats }>()).packages;
    const before = await stats();

    const runJob = async (name: string) => {
      const { id } = await tc.submit(batchJob(name, ["bin/run.sh"], "package: demo@1.0\n"));
      const j = await tc.waitJob(id, (x) => x.taskList.length > 0 && x.taskList.every((t) => t.state === "completed" || t.state === "failed"), 60_000, "task finished");
      assert.equal(j.taskList[0]!.state, "completed", JSON.stringify(j.taskList[0]!.events));
      const detail = await tc.api.get(`${await tc.primaryUrl()}/v1/jobs/${id}`).json<{ packageDigest?: string }>();
      assert.equal(detail.packageDigest, digest, "the job was resolved to the pushed digest at submission");
      const logs = await tc.api.get(`${await tc.primaryUrl()}/v1/tasks/${encodeURIComponent(`${id}/0`)}/logs?stream=stdout`).text();
      assert.match(logs, new RegExp(`demo says: hello from ${id}/0`));
    };

    await runJob("pkg-run-1");
    const afterFirst = await stats();
    assert.equal(afterFirst.misses - before.misses, 1, "the first job pulled the package");
    assert.equal(afterFirst.extractions - before.extractions, 1);
    assert.ok(afterFirst.bytesTransferred - before.bytesTransferred > 0);

    await runJob("pkg-run-2");
    const afterSecond = await stats();
    assert.equal(afterSecond.bytesTransferred, afterFirst.bytesTransferred, "no second transfer");
    assert.equal(afterSecond.extractions, afterFirst.extractions, "no second unpack");
    assert.equal(afterSecond.misses, afterFirst.misses);
    assert.ok(afterSecond.hits > afterFirst.hits, "answered from the cache");

    // The agent advertises the cached digest, which placement can prefer.
    let cached: string[] = [];
    await until(
      `agent-1 to advertise ${digest}`,
      async () => {
        const n = await tc.api.get(`${await tc.primaryUrl()}/v1/nodes`).json<{ nodes: { id: string; cachedPackages: string[] }[] }>();
        cached = n.nodes.find((x) => x.id === "agent-1")?.cachedPackages ?? [];
        return cached.includes(digest);
      },
      { timeoutMs: 15_000, intervalMs: 200, show: () => cached },
    );
  });

  it("a job naming an unknown package is refused at submission", async () => {
    const r = await tc.api.post(`${await tc.primaryUrl()}/v1/jobs`, { body: batchJob("pkg-missing", ["bin/run.sh"], "package: nope@9\n"), headers: { "content-type": "application/yaml" }, throwHttpErrors: false });
    assert.equal(r.statusCode, 400);
    assert.match(r.body, /torca push DIR --name nope --version 9/);
  });
});
