/**
 * Packages checked at push, on a real manager: every archive of the hostile
 * corpus is refused with 422 naming its first bad entry, none of their bytes
 * reaches the shared storage (not even a temporary file), and a normal package
 * is still accepted.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { hostileCorpus, tgzOf } from "../harness/archives.js";
import { startTestCell, type TestCell } from "../harness/cell.js";

const skip = zookeeperInstalled() ? false : "ZooKeeper is not installed";

describe("packages are checked at push", { skip, timeout: 300_000 }, () => {
  let tc: TestCell;

  before(async () => {
    tc = await startTestCell({ managers: 1, agents: 0 });
  });

  after(async () => {
    await tc?.close();
  });

  const push = async (name: string, body: Buffer) =>
    tc.api.put(`${await tc.primaryUrl()}/v1/packages/${name}/1.0`, { body, throwHttpErrors: false, headers: { "content-type": "application/gzip" } });

  const storedFiles = () => readdirSync(join(tc.cell.dir, "storage", "blobs", "sha256")).sort();

  it("refuses each hostile archive with 422 naming the entry, and stores nothing", async () => {
    for (const [i, c] of hostileCorpus().entries()) {
      const r = await push(`hostile-${i}`, c.tgz);
      assert.equal(r.statusCode, 422, `${c.what}: ${r.body}`);
      const { error } = JSON.parse(r.body) as { error: { code: string; message: string } };
      assert.equal(error.code, "unsafe_archive", c.what);
      assert.ok(error.message.includes(JSON.stringify(c.entry)), `${c.what}: the message names ${c.entry}: ${error.message}`);
      assert.match(error.message, c.message, c.what);
    }
    assert.deepEqual(storedFiles(), [], "no blob and no temporary file of a refused push");
    const { packages } = await tc.api.get(`${await tc.primaryUrl()}/v1/packages`).json<{ packages: unknown[] }>();
    assert.deepEqual(packages, []);
  });

  it("accepts a normal package", async () => {
    const tgz = tgzOf([{ name: "bin/", type: "5", mode: 0o755 }, { name: "bin/run.sh", body: "#!/bin/sh\necho hi\n", mode: 0o755 }, { name: "run", type: "2", linkname: "bin/run.sh" }]);
    const r = await push("normal", tgz);
    assert.equal(r.statusCode, 201, r.body);
    const { digest } = JSON.parse(r.body) as { digest: string };
    assert.deepEqual(storedFiles(), [digest.slice("sha256:".length)]);
  });
});
