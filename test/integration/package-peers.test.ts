import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { runTorca } from "../harness/cli.js";
import { batchJob, ownAddresses, startTestCell, type TestCell } from "../harness/cell.js";
import { until } from "../harness/wait.js";

/**
 * Peer package distribution on a real cell (ZooKeeper, two managers, three
 * agents on their own loopback addresses, process driver): a package pulled
 * by one agent is served to a fresh agent by that agent while shared storage
 * is gone, and a peer whose cached blob went bad is reported (an alert) and
 * skipped for storage.
 */

interface Stats {
  packages: { bytesFromPeers: number; bytesFromStorage: number; bytesFromHttp: number; peerIntegrityFailures: number; peerFallbacks: number };
  blobServing?: { bytesServed: number; transfers: number };
}

const skip = zookeeperInstalled() ? false : "ZooKeeper is not installed";
const pinned = (agent: string) => `package: peerdemo@1.0\nconstraints: [{ attribute: node.id, operator: '=', value: ${agent} }]\n`;

describe("packages from peers on a real cell", { skip, timeout: 300_000 }, () => {
  let tc: TestCell;
  let work: string;
  let digest: string;
  let blobsDir: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "torca-peers-it-"));
    tc = await startTestCell({ agents: 3, hosts: ownAddresses(2, 3) });
    blobsDir = join(tc.cell.dir, "storage", "blobs");
  });

  after(async () => {
    // Shared storage back in place before the cell goes, whatever happened.
    if (blobsDir && existsSync(`${blobsDir}.away`) && !existsSync(blobsDir)) renameSync(`${blobsDir}.away`, blobsDir);
    await tc?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const stats = async (agent: string): Promise<Stats> => tc.api.get(`${tc.cell.daemons.get(agent)!.url}/v1/status`).json<Stats>();
  const peersOf = async (): Promise<string[]> => {
    const r = await tc.api.get(`${await tc.primaryUrl()}/v1/blobs/${digest}/peers`).json<{ peers: { id: string }[] }>();
    return r.peers.map((p) => p.id).sort();
  };
  const runOn = async (name: string, agent: string): Promise<void> => {
    const { id } = await tc.submit(batchJob(name, ["bin/run.sh"], pinned(agent)));
    const j = await tc.waitJob(id, (x) => x.taskList.length > 0 && x.taskList.every((t) => t.state === "completed" || t.state === "failed"), 90_000, "task finished");
    assert.equal(j.taskList[0]!.state, "completed", JSON.stringify(j.taskList[0]!.events));
    assert.equal(j.taskList[0]!.nodeId, agent);
    const logs = await tc.api.get(`${await tc.primaryUrl()}/v1/tasks/${encodeURIComponent(`${id}/0`)}/logs?stream=stdout`).text();
    assert.match(logs, /peer package ok: 1048576/);
  };

  it("a task whose package is cached on another agent starts on a fresh agent with shared storage gone", async () => {
    const dir = join(work, "peerdemo");
    mkdirSync(join(dir, "bin"), { recursive: true });
    writeFileSync(join(dir, "bin", "run.sh"), '#!/bin/sh\nset -e\necho "peer package ok: $(wc -c < share/payload)"\n');
    chmodSync(join(dir, "bin", "run.sh"), 0o755);
    mkdirSync(join(dir, "share"));
    writeFileSync(join(dir, "share", "payload"), randomBytes(1 << 20));
    const pushed = await runTorca(["--json", "push", dir, "--name", "peerdemo", "--version", "1.0"], { TORCA_MANAGER: await tc.primaryUrl(), TORCA_TOKEN: tc.cell.token });
    assert.equal(pushed.code, 0, pushed.stderr);
    digest = (JSON.parse(pushed.stdout) as { digest: string }).digest;

    await runOn("seed", "agent-1");
    assert.ok((await stats("agent-1")).packages.bytesFromStorage > 0, "the first agent read the shared storage directory");
    await until("agent-1's ad to offer the blob", async () => (await peersOf()).includes("agent-1"), { timeoutMs: 20_000, intervalMs: 200 });

    // Shared storage gone: neither the managers' blob route nor the agents' mount has the blob.
    renameSync(blobsDir, `${blobsDir}.away`);
    assert.equal((await tc.api.get(`${await tc.primaryUrl()}/v1/blobs/${digest}`, { throwHttpErrors: false })).statusCode, 404);

    await runOn("from-peer", "agent-2");
    const fresh = await stats("agent-2");
    assert.ok(fresh.packages.bytesFromPeers > 0, JSON.stringify(fresh.packages));
    assert.equal(fresh.packages.bytesFromStorage + fresh.packages.bytesFromHttp, 0);
    const seed = await stats("agent-1");
    assert.equal(seed.blobServing?.bytesServed, fresh.packages.bytesFromPeers, "agent-1 served what agent-2 received");
    await until("agent-2 to offer the blob in turn", async () => (await peersOf()).join() === "agent-1,agent-2", { timeoutMs: 20_000, intervalMs: 200 });
  });

  it("a task cannot read the credential agents present to each other", async () => {
    const { id } = await tc.submit(batchJob("steal-token", ["/bin/sh", "-c", `for f in ${tc.cell.agentTokenFile} ${join(tc.cell.dir, "agent-1.json")}; do cat $f >/dev/null && exit 10; done; exit 1`], `restart: { attempts: 0 }\nconstraints: [{ attribute: node.id, operator: '=', value: agent-1 }]\n`));
    // A failed batch task migrates after its restarts on a node; pinned, it then waits: its first exit is the answer.
    const j = await tc.waitJob(id, (x) => x.taskList[0]?.exit !== undefined, 60_000, "the task's exit");
    assert.equal(j.taskList[0]!.exit!.exitCode, 1, "exit 10: the task read the agent token file or the agent's config");
    await tc.api.delete(`${await tc.primaryUrl()}/v1/jobs/${id}`);
    const logs = await tc.api.get(`${await tc.primaryUrl()}/v1/tasks/${encodeURIComponent(`${id}/0`)}/logs?stream=stderr&attempt=1`).text();
    assert.match(logs, /Permission denied/);
  });

  it("a peer serving a corrupted blob is reported to the primary (an alert) and skipped for shared storage", async () => {
    renameSync(`${blobsDir}.away`, blobsDir);
    // Both holders' kept copies go bad (a failing disk): the third agent must not run from either.
    for (const agent of ["agent-1", "agent-2"]) {
      const kept = join(tc.cell.dir, agent, "packages", "blobs", digest.slice("sha256:".length));
      const bytes = readFileSync(kept);
      bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0xff;
      writeFileSync(kept, bytes);
    }
    await runOn("past-bad-peers", "agent-3");
    const third = await stats("agent-3");
    assert.equal(third.packages.peerIntegrityFailures, 2, JSON.stringify(third.packages));
    assert.equal(third.packages.peerFallbacks, 1);
    assert.ok(third.packages.bytesFromStorage > 0, "the verified copy came from shared storage");

    const primaryUrl = await tc.primaryUrl();
    const primaryId = [...tc.cell.daemons.values()].find((d) => d.url === primaryUrl)!.id;
    const log = join(tc.cell.dir, "logs", `${primaryId}.log`);
    await until(
      "the primary to raise package-corrupt alerts for both peers",
      () => ["agent-1", "agent-2"].every((a) => readFileSync(log, "utf8").includes(`"alert":"package-corrupt:${a}:${digest}"`)),
      { timeoutMs: 20_000, intervalMs: 200 },
    );
  });
});
