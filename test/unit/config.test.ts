import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/common/config.js";
import { ConfigError } from "../../src/common/errors.js";
import { parseCpu, parseDuration, parseSize } from "../../src/common/units.js";

const dir = mkdtempSync(join(tmpdir(), "torca-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe("units are parsed once at the border", () => {
  test("sizes", () => {
    assert.equal(parseSize("256MiB"), 256 * 1024 * 1024);
    assert.equal(parseSize("1GiB"), 1024 ** 3);
    assert.equal(parseSize("512M"), 512e6);
    assert.equal(parseSize(1024), 1024);
    assert.match(String(parseSize("lots")), /not a size/);
    assert.match(String(parseSize("5 parsecs")), /unknown size unit/);
  });
  test("durations", () => {
    assert.equal(parseDuration("5s"), 5000);
    assert.equal(parseDuration("1m"), 60_000);
    assert.equal(parseDuration("1m30s"), 90_000);
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration(250), 250);
    assert.match(String(parseDuration("soon")), /not a duration/);
  });
  test("cpu", () => {
    assert.equal(parseCpu("1.5"), 1.5);
    assert.equal(parseCpu("500m"), 0.5);
    assert.equal(parseCpu(2), 2);
    assert.match(String(parseCpu(0)), /positive/);
  });
});

describe("one config for manager, agent and client", () => {
  test("defaults, units and relative paths resolved against the file", () => {
    const { config } = loadConfig(file("ok.yaml", "cluster:\n  sessionTimeout: 2s\nmanager:\n  storageDir: store\nagent:\n  reserved: { memory: 1GiB, cpu: 500m }\n"), {});
    assert.equal(config.cluster.sessionTimeout, 2000);
    assert.equal(config.manager.listen, "127.0.0.1:7300");
    assert.equal(config.manager.storageDir, join(dir, "store"));
    assert.equal(config.agent.reserved.memory, 1024 ** 3);
    assert.equal(config.agent.reserved.cpu, 0.5);
  });

  test("environment overrides win over the file", () => {
    const { config } = loadConfig(file("env.yaml", "manager:\n  listen: 127.0.0.1:7300\n"), { TORCA_MANAGER_LISTEN: "127.0.0.1:9999", TORCA_CLUSTER_SESSION_TIMEOUT: "3s" });
    assert.equal(config.manager.listen, "127.0.0.1:9999");
    assert.equal(config.cluster.sessionTimeout, 3000);
  });

  const bad: [string, string, RegExp][] = [
    ["unknown top-level key", "clustr: {}\n", /unknown key "clustr"/],
    ["unknown nested key", "manager:\n  lisen: 1.2.3.4:1\n", /manager: unknown key "lisen"/],
    ["bad duration", "cluster:\n  sessionTimeout: soon\n", /cluster\.sessionTimeout: "soon" is not a duration/],
    ["bad size", "manager:\n  bodyLimit: huge\n", /manager\.bodyLimit: "huge" is not a size/],
    ["listen without host", "manager:\n  listen: 7300\n", /manager\.listen/],
    ["wrong type", "agent:\n  portRange: 5\n", /agent\.portRange/],
    ["bad enum", "agent:\n  driver: docker\n", /agent\.driver: must be one of "auto", "lxc", "process"/],
    ["not a mapping", "- a\n- b\n", /must be a mapping/],
    ["YAML syntax", "manager: [\n", /bad-YAML-syntax\.yaml: Flow sequence .* at line 2/],
  ];
  for (const [what, text, re] of bad) {
    test(`rejects ${what}, naming the key`, () => {
      const p = file(`bad-${what.replace(/\W+/g, "-")}.yaml`, text);
      assert.throws(() => loadConfig(p, {}), (e: unknown) => e instanceof ConfigError && re.test(e.message));
    });
  }

  test("an unknown environment override key is rejected too", () => {
    assert.throws(() => loadConfig(undefined, { TORCA_AGENT_BOGUS: "1" }), /agent: unknown key "bogus"/);
  });
});
