import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadConfig } from "../../src/common/config.js";
import { lastError } from "../../src/cell/local-cell.js";

/**
 * The deployment examples (config/deploy/, docs/deploy.md) stay loadable and
 * agree with the systemd units; `npm run test:install` runs them for real.
 */

const ROOT = new URL("../../..", import.meta.url).pathname;
const DEPLOY = join(ROOT, "config", "deploy");
const work = mkdtempSync(join(tmpdir(), "torca-deploy-configs-"));
after(() => rmSync(work, { recursive: true, force: true }));

describe("the deployment example configs", () => {
  it("load once make-secrets.sh has filled in the token digests", () => {
    for (const f of ["manager.yaml", "agent.yaml"]) cpSync(join(DEPLOY, f), join(work, f));
    execFileSync(join(DEPLOY, "make-secrets.sh"), [join(work, "secrets"), join(work, "manager.yaml"), join(work, "agent.yaml")]);
    const manager = loadConfig(join(work, "manager.yaml"), {}).config;
    assert.deepEqual(manager.cluster.zookeeper.split(","), ["zk-1.example.net:2181", "zk-2.example.net:2181", "zk-3.example.net:2181"]);
    assert.equal(manager.manager.history.engine, "postgres");
    assert.equal(manager.manager.storageDir, "/srv/torca/storage");
    const agent = loadConfig(join(work, "agent.yaml"), {}).config;
    assert.equal(agent.agent.storageDir, manager.manager.storageDir, "one shared storage directory");
    const digest = (f: string) => execFileSync("sh", ["-c", `printf %s "$(cat ${join(work, "secrets", f)})" | sha256sum | cut -d' ' -f1`], { encoding: "utf8" }).trim();
    assert.equal(manager.cluster.agentTokenSha256, digest("agent-token"));
    assert.equal(agent.cluster.managerTokenSha256, digest("manager-token"));
    assert.equal(agent.cluster.adminTokenSha256, digest("admin-token"));
  });

  it("run /usr/bin/torca, as the systemd units do", () => {
    const master = loadConfig(join(DEPLOY, "master.yaml"), {}).config.master;
    assert.ok(master.daemons.every((d) => d.command[0] === "/usr/bin/torca"));
    for (const unit of readdirSync(join(ROOT, "config", "systemd"))) {
      assert.match(readFileSync(join(ROOT, "config", "systemd", unit), "utf8"), /^ExecStart=\/usr\/bin\/torca /m, unit);
    }
  });
});

describe("a daemon's own error, from its output", () => {
  it("is the CLI's last 'torca:' line, else the last error record, else the last line", () => {
    assert.equal(lastError('{"level":30,"msg":"starting"}\ntorca: /etc/m.yaml: manager.retention: unknown key "bogus"\n'), '/etc/m.yaml: manager.retention: unknown key "bogus"');
    assert.equal(lastError('{"level":50,"msg":"cannot listen","err":{"message":"EADDRINUSE"}}\n{"level":30,"msg":"bye"}\n'), "cannot listen: EADDRINUSE");
    assert.equal(lastError("Segmentation fault\n"), "Segmentation fault");
    assert.equal(lastError(""), undefined);
  });
});
