import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { fourLetterWord, ZOOKEEPER_JAR, zookeeperInstalled } from "../../src/cell/zookeeper-server.js";
import { createHttpClient } from "../../src/common/http.js";
import { postgresBinDir, startPostgres, type TestPostgres } from "../harness/postgres.js";
import { until } from "../harness/wait.js";

/**
 * The artifact as a new user gets it: `npm pack` from a clean copy of the
 * checkout (its prepack builds), `npm install -g --prefix P` of the tarball,
 * then a cell brought up as docs/deploy.md says, from the example configs
 * shipped in the package (config/deploy/): three ZooKeeper servers, two
 * managers, two agents, shared storage, TLS and tokens. Every "host" is a
 * loopback address of its own and a root directory of its own; the configs
 * are changed only by the substitution the guide describes (host names to
 * addresses, absolute paths under the host's root). Every process is started
 * here and ended by its PID.
 *
 * `npm run test:install` (minutes: a build, a pack and an install).
 */

const run = promisify(execFile);
const REPO = join(dirname(new URL(import.meta.url).pathname), "..", "..", "..");

/** The example hosts of config/deploy/ and the loopback address each one gets here. */
const HOSTS: Record<string, string> = {
  "zk-1.example.net": "127.0.0.41",
  "zk-2.example.net": "127.0.0.42",
  "zk-3.example.net": "127.0.0.43",
  "manager-1.example.net": "127.0.0.44",
  "manager-2.example.net": "127.0.0.45",
  "agent-1.example.net": "127.0.0.46",
  "agent-2.example.net": "127.0.0.47",
};

let work = "";
let prefix = "";
let torca = "";
let shipped = "";
let postgres: TestPostgres | undefined;
const started: { name: string; child: ChildProcess }[] = [];

/** The configs as docs/deploy.md says the test uses them: host names become addresses, absolute paths move under the host's root. */
function forHost(text: string, root: string): string {
  let out = text;
  for (const [name, address] of Object.entries(HOSTS)) out = out.split(name).join(address);
  return out.replace(/(^|[\s"'=:[{,])\/(etc|var|srv)\//gm, `$1${root}/$2/`);
}

function hostRoot(host: string): string {
  return join(work, "hosts", host);
}

/** Starts a long-running process with its output in `log`; remembered for the cleanup. */
function launch(name: string, file: string, args: string[], log: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, "a");
  const child = spawn(file, args, { stdio: ["ignore", fd, fd], env: { ...process.env, NODE_TEST_CONTEXT: undefined, TORCA_LOG_LEVEL: "info", ...env } });
  closeSync(fd);
  started.push({ name, child });
  return child;
}

async function stopAll(): Promise<void> {
  // Agents, then managers, then ZooKeeper: the reverse of the start order.
  for (const { child } of started.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    const exited = new Promise((r) => child.once("exit", r));
    process.kill(child.pid, "SIGTERM");
    const kill = setTimeout(() => child.pid !== undefined && process.kill(child.pid, "SIGKILL"), 10_000);
    await exited;
    clearTimeout(kill);
  }
}

/** `torca ARGS` from the installed package, as a client of the cell. */
async function client(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return run(torca, args, { env: { ...process.env, NODE_TEST_CONTEXT: undefined, ...env }, timeout: 180_000 });
}

const skip = !zookeeperInstalled() ? "ZooKeeper is not installed" : !postgresBinDir() ? "PostgreSQL is not installed" : false;

describe("installing the packed tarball and deploying a cell by docs/deploy.md", { skip }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "torca-install-"));
    prefix = join(work, "prefix");
  });
  after(async () => {
    await stopAll();
    await postgres?.stop();
    if (!process.env.TORCA_KEEP_TEST_DIRS) await rm(work, { recursive: true, force: true });
  });

  it("packs from a clean copy of the checkout without tests or benchmarks, as a tarball and a Debian package", async () => {
    const checkout = join(work, "checkout");
    const { stdout } = await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: REPO, maxBuffer: 64 << 20 });
    for (const f of stdout.split("\0").filter(Boolean)) {
      if (!existsSync(join(REPO, f))) continue; // deleted, not yet committed
      mkdirSync(dirname(join(checkout, f)), { recursive: true });
      cpSync(join(REPO, f), join(checkout, f));
    }
    symlinkSync(join(REPO, "node_modules"), join(checkout, "node_modules"));
    await run("npm", ["pack", "--pack-destination", work], { cwd: checkout, maxBuffer: 64 << 20, timeout: 600_000 });
    const version = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
    const tarball = join(work, `torca-${version}.tgz`);
    assert.ok(existsSync(tarball), `npm pack made ${tarball}`);
    const { stdout: list } = await run("tar", ["tzf", tarball], { maxBuffer: 64 << 20 });
    const files = list.split("\n");
    assert.ok(files.includes("package/bin/torca.js"));
    assert.ok(files.includes("package/dist/submitter/cli.js"));
    assert.ok(files.includes("package/config/deploy/manager.yaml"));
    assert.ok(files.includes("package/docs/deploy.md"));
    assert.ok(files.some((f) => f.startsWith("package/node_modules/zookeeper/")), "dependencies are bundled");
    for (const f of files) assert.ok(!/^package\/(dist\/)?(test|bench)\//.test(f) && !f.startsWith("package/node_modules/typescript/"), `ships ${f}`);

    // The Debian package is made from the same tarball.
    const deb = (await run(join(checkout, "scripts", "build-deb.sh"), [tarball, work], { cwd: checkout, maxBuffer: 64 << 20, timeout: 300_000 })).stdout.trim();
    const { stdout: debFiles } = await run("dpkg-deb", ["--contents", deb], { maxBuffer: 64 << 20 });
    for (const f of ["./usr/bin/torca -> ../lib/torca/bin/torca.js", "./lib/systemd/system/torca-agent.service", "./usr/lib/torca/dist/submitter/cli.js", "./usr/share/doc/torca/deploy.md"]) assert.ok(debFiles.includes(f), `the .deb holds ${f}`);
    const debRoot = join(work, "deb-root");
    await run("dpkg-deb", ["--extract", deb, debRoot], { maxBuffer: 64 << 20 });
    assert.match((await run(join(debRoot, "usr", "bin", "torca"), ["--help"])).stdout, /Usage: torca/);

    await run("npm", ["install", "-g", "--offline", "--no-audit", "--no-fund", "--prefix", prefix, tarball], { maxBuffer: 64 << 20, timeout: 600_000 });
    torca = join(prefix, "bin", "torca");
    shipped = join(prefix, "lib", "node_modules", "torca");
    const { stdout: help } = await run(torca, ["--help"]);
    assert.match(help, /Usage: torca/);
  });

  it("has systemd units that verify against the installed binary", async (t) => {
    assert.ok(torca, "installed");
    const verify = await run("systemd-analyze", ["--version"]).then(() => true, () => false);
    if (!verify) return t.skip("systemd-analyze is not installed");
    const units = join(work, "units");
    mkdirSync(units);
    for (const f of readdirSync(join(shipped, "config", "systemd"))) {
      // The units name /usr/bin/torca, where the Debian package and `npm install -g` with Debian's node put it.
      writeFileSync(join(units, f), readFileSync(join(shipped, "config", "systemd", f), "utf8").split("/usr/bin/torca").join(torca));
    }
    const r = await run("systemd-analyze", ["verify", "--man=no", ...readdirSync(units).map((f) => join(units, f))]).then(
      (x) => ({ ok: true, out: x.stdout + x.stderr }),
      (e: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}` }),
    );
    assert.ok(r.ok, r.out);
    assert.equal(r.out.trim(), "", "no warnings");
  });

  it("brings up the guide's cell and runs a job on it", async () => {
    assert.ok(torca, "installed");
    const deploy = join(shipped, "config", "deploy");
    const storage = join(work, "nfs", "torca-storage");
    mkdirSync(storage, { recursive: true });

    // ZooKeeper: the same zoo.cfg on the three servers, each with its myid.
    const zookeeperHosts = Object.keys(HOSTS).filter((h) => h.startsWith("zk-"));
    for (const [i, host] of zookeeperHosts.entries()) {
      const root = hostRoot(host);
      const conf = join(root, "etc", "zookeeper", "conf");
      mkdirSync(conf, { recursive: true });
      writeFileSync(join(conf, "zoo.cfg"), forHost(readFileSync(join(deploy, "zookeeper", "zoo.cfg"), "utf8"), root));
      mkdirSync(join(root, "var", "lib", "zookeeper"), { recursive: true });
      writeFileSync(join(root, "var", "lib", "zookeeper", "myid"), `${i + 1}\n`);
      launch(host, "java", ["-Xmx192m", "-XX:+UseSerialGC", "-cp", ["/etc/zookeeper/conf", ZOOKEEPER_JAR].join(":"), "org.apache.zookeeper.server.quorum.QuorumPeerMain", join(conf, "zoo.cfg")], join(root, "zookeeper.log"));
    }
    await until(
      "a ZooKeeper quorum",
      async () => {
        const modes = await Promise.all(zookeeperHosts.map((h) => fourLetterWord(HOSTS[h]!, 2181, "srvr").then((r) => /Mode: (\w+)/.exec(r)?.[1], () => undefined)));
        return modes.filter((m) => m === "leader").length === 1 && modes.filter((m) => m === "follower").length === 2;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );

    // The history database the guide's managers share.
    postgres = await startPostgres();
    const historyUrl = await postgres.createDatabase("torca");

    // Secrets once, certificates per daemon, as in the guide; then each host's /etc/torca.
    const secrets = join(work, "secrets");
    const managerConfig = join(work, "manager.yaml");
    const agentConfig = join(work, "agent.yaml");
    cpSync(join(deploy, "manager.yaml"), managerConfig);
    cpSync(join(deploy, "agent.yaml"), agentConfig);
    await run(join(deploy, "make-secrets.sh"), [secrets, managerConfig, agentConfig]);
    const tls = join(work, "tls");
    const daemons = Object.keys(HOSTS).filter((h) => !h.startsWith("zk-")).map((h) => h.split(".")[0]!);
    for (const d of daemons) await run(join(deploy, "make-certs.sh"), [tls, d, `${d}.example.net`, HOSTS[`${d}.example.net`]!]);

    for (const d of daemons) {
      const kind = d.startsWith("manager") ? "manager" : "agent";
      const root = hostRoot(`${d}.example.net`);
      const etc = join(root, "etc", "torca");
      mkdirSync(join(etc, "tls"), { recursive: true, mode: 0o700 });
      const own = kind === "manager" ? ["admin-token", "manager-token", "zookeeper-auth"] : ["agent-token", "zookeeper-auth"];
      for (const f of own) cpSync(join(secrets, f), join(etc, f));
      for (const f of ["ca.crt", `${d}.crt`, `${d}.key`]) cpSync(join(tls, f), join(etc, "tls", f));
      const template = readFileSync(kind === "manager" ? managerConfig : agentConfig, "utf8").split(`${kind}-1`).join(d);
      writeFileSync(join(etc, `${kind}.yaml`), forHost(template, root).replace("postgresql://torca@db.example.net:5432/torca", historyUrl));
      // The NFS mount: every host sees the same storage directory.
      mkdirSync(join(root, "srv", "torca"), { recursive: true });
      symlinkSync(storage, join(root, "srv", "torca", "storage"));
      mkdirSync(join(root, "var", "lib", "torca-agent"), { recursive: true });
      // The process driver: the test machine need not have LXC's root file system.
      launch(d, torca, [kind, "--config", join(etc, `${kind}.yaml`)], join(root, `${d}.log`), kind === "agent" ? { TORCA_AGENT_DRIVER: "process" } : {});
    }

    const managers = daemons.filter((d) => d.startsWith("manager")).map((d) => `https://${HOSTS[`${d}.example.net`]}:7300`);
    const asAdmin = { TORCA_MANAGER: managers.join(","), TORCA_TOKEN: readFileSync(join(secrets, "admin-token"), "utf8").trim(), TORCA_CA: join(tls, "ca.crt") };
    const agents = daemons.filter((d) => d.startsWith("agent"));
    await until(
      "both agents ready",
      async () => {
        const { stdout } = await client(["nodes", "--json"], asAdmin).catch(() => ({ stdout: "[]" }));
        const parsed = JSON.parse(stdout) as { id: string; state: string }[] | { nodes: { id: string; state: string }[] };
        const nodes = Array.isArray(parsed) ? parsed : parsed.nodes;
        return agents.every((a) => nodes.some((n) => n.id === a && n.state === "ready"));
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );

    const { stdout } = await client(["submit", join(shipped, "config", "examples", "hello.yaml"), "--wait", "--json", "--timeout", "120"], asAdmin);
    const job = JSON.parse(stdout) as { id: string; status: string };
    assert.equal(job.status, "complete", stdout);
    const logs = await client(["logs", `${job.id}/0`], asAdmin);
    assert.match(logs.stdout, /hello from hello\/0 on agent-\d/);

    // Both managers serve the API and the status pages over TLS, the backup from its copy of the state.
    const browser = createHttpClient({ ca: readFileSync(asAdmin.TORCA_CA), timeoutMs: 10_000, retries: 0 });
    for (const m of managers) {
      await until(`${m} reports the job complete`, async () => {
        const r = await client(["--manager", m, "status", job.id, "--json"], asAdmin).catch(() => ({ stdout: "" }));
        return /"status":\s*"complete"/.test(r.stdout);
      }, { timeoutMs: 30_000, intervalMs: 500 });
      // A browser logs in with the token once; the session cookie carries it from then on.
      const login = await browser.post(`${m}/login`, { body: new URLSearchParams({ token: asAdmin.TORCA_TOKEN, next: "/" }).toString(), headers: { "content-type": "application/x-www-form-urlencoded" }, followRedirect: false });
      const cookie = (login.headers["set-cookie"] ?? []).map((c) => c.split(";")[0]).join("; ");
      assert.ok(cookie, `${m} set a session cookie`);
      const page = await browser.get(`${m}/jobs/${encodeURIComponent(job.id)}`, { headers: { cookie } }).text();
      assert.match(page, /<html/i);
      assert.ok(page.includes(`${job.id}/0`), `${m}'s job page lists task ${job.id}/0`);
    }
  });
});
