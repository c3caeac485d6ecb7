import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { got } from "got";
import { ensureCellCa } from "../../src/cell/certificates.js";
import { freePort } from "../../src/cell/ports.js";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { createHttpClient } from "../../src/common/http.js";
import { runTorca } from "../harness/cli.js";
import { startTestCell, type TestCell } from "../harness/cell.js";

/*
 * TLS with real processes: a whole local cell on HTTPS (`torca up --tls`'s
 * LocalCell) runs a job through the CLI, which trusts the cell CA from
 * cell.json; clients without that CA, or speaking plain HTTP, get nowhere;
 * and a daemon told to serve plain HTTP beyond loopback exits before it
 * listens.
 */

const skip = zookeeperInstalled() ? false : "ZooKeeper is not installed";
const EXAMPLES = join(fileURLToPath(new URL("../../..", import.meta.url)), "config", "examples");
const scratch = mkdtempSync(join(tmpdir(), "torca-tls-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe("a local cell on TLS", { skip }, () => {
  let c: TestCell;
  let cli: Record<string, string>;
  before(async () => {
    c = await startTestCell({ managers: 2, agents: 1, tls: true });
    cli = { TORCA_CELL_DIR: c.cell.dir, TORCA_MANAGER: "", TORCA_TOKEN: "", TORCA_CA: "" };
  });
  after(async () => {
    await c?.close();
  });

  test("every daemon serves HTTPS; keys are 0600; cell.json names the CA", () => {
    for (const d of c.cell.daemons.values()) assert.match(d.url, /^https:\/\/127\.0\.0\.1:\d+$/, d.id);
    const cellFile = JSON.parse(readFileSync(join(c.cell.dir, "cell.json"), "utf8")) as { ca?: string; managers: string[] };
    assert.equal(cellFile.ca, c.cell.caFile);
    assert.ok(cellFile.managers.every((u) => u.startsWith("https://")));
    for (const key of ["ca.key", "manager-1.key", "manager-2.key", "agent-1.key"]) assert.equal(statSync(join(c.cell.dir, "tls", key)).mode & 0o777, 0o600, key);
  });

  test("the CLI runs a job end to end on it: submit --wait, status, logs (the agent's log proxied by the manager)", async () => {
    const sub = await runTorca(["submit", join(EXAMPLES, "hello.yaml"), "--wait"], cli);
    assert.equal(sub.code, 0, sub.stderr);
    assert.match(sub.stdout, /hello complete/);
    const status = await runTorca(["status", "hello", "--json"], cli);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { status: string }).status, "complete");
    const logs = await runTorca(["logs", "hello/0"], cli);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /hello from hello\/0 on agent-1/);
  });

  test("a client without the cell CA is refused with a certificate error, and so is one trusting another CA", async () => {
    const url = c.cell.managerUrls[0]!;
    await assert.rejects(createHttpClient({ token: c.cell.token, retries: 0 }).get(`${url}/v1/leader`), (e: Error & { code?: string }) => {
      assert.equal(e.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE", e.message);
      return true;
    });
    const other = await ensureCellCa(join(scratch, "other-ca"));
    const r = await runTorca(["jobs"], { TORCA_CELL_DIR: join(scratch, "no-cell"), TORCA_MANAGER: url, TORCA_TOKEN: c.cell.token, TORCA_CA: other.cert });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /certificate|UNABLE_TO_VERIFY/i);
    const ok = await runTorca(["jobs"], { TORCA_CELL_DIR: join(scratch, "no-cell"), TORCA_MANAGER: url, TORCA_TOKEN: c.cell.token, TORCA_CA: c.cell.caFile! });
    assert.equal(ok.code, 0, ok.stderr);
  });

  test("plain HTTP to a TLS port gets no answer from the API", async () => {
    for (const d of c.cell.daemons.values()) {
      const plain = d.url.replace(/^https:/, "http:");
      await assert.rejects(got(`${plain}/healthz`, { retry: { limit: 0 }, timeout: { request: 5000 } }), d.id);
    }
  });
});

describe("plain HTTP beyond loopback", () => {
  for (const [role, address] of [
    ["manager", "0.0.0.0"],
    ["agent", "192.0.2.10"],
  ] as const) {
    test(`a ${role} listening on ${address} without cluster.tls exits before listening, naming the address and the keys`, async () => {
      const port = await freePort();
      const config = join(scratch, `${role}-open.json`);
      writeFileSync(config, JSON.stringify({ cluster: { zookeeper: "127.0.0.1:1", tokenFile: join(scratch, "token") }, [role]: { listen: `${address}:${port}` } }));
      const r = await runTorca([role, "--config", config], {}, 30_000);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`${role}\\.listen is ${address.replace(/\./g, "\\.")}:${port}, beyond loopback`));
      assert.match(r.stderr, /cluster\.tls/);
      assert.match(r.stderr, /cluster\.insecure: true/);
    });
  }
});
