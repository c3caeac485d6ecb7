import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as dnsPacket from "dns-packet";
import type { DecodedPacket, SrvAnswer, StringAnswer } from "dns-packet";
import { answerDnsQuery, encodeWithinLimit, nodeTarget, parseDnsName, type DnsSource } from "../../naming/dns.js";
import { decodeEndpointRecord, decodeTaskId, encodeEndpointRecord, encodeTaskId, namingPaths, serviceOfPath, sortEndpoints, type Endpoint, type EndpointRecord } from "../../naming/layout.js";
import { InvalidNameError, parseServiceName } from "../../naming/names.js";
import type { Resolution } from "../../naming/resolver.js";
import { SerialJob } from "../../naming/watched-children.js";

describe("service names", () => {
  test("default namespace and ns/ form; canonical key omits default", () => {
    assert.deepEqual(parseServiceName("web.frontend"), { namespace: "default", service: "web.frontend", key: "web.frontend" });
    assert.deepEqual(parseServiceName("default/web.frontend"), { namespace: "default", service: "web.frontend", key: "web.frontend" });
    assert.deepEqual(parseServiceName("team-a/db"), { namespace: "team-a", service: "db", key: "team-a/db" });
  });
  test("rejects bad names", () => {
    for (const bad of ["", "Web", "a..b", ".a", "a.", "a/b/c", "ns/", "/svc", "a b", "-ns-/x", "x".repeat(254)]) {
      assert.throws(() => parseServiceName(bad), InvalidNameError, bad);
    }
  });
});

describe("znode layout", () => {
  const rec: EndpointRecord = { host: "10.0.0.5", port: 20001, ports: { http: 20001, admin: 20002 }, task: "ns:web/2", node: "agent-1", job: "ns:web", attempt: 3, registeredAt: 1 };
  test("paths: task ids are encoded into one path segment", () => {
    const p = namingPaths("/torca");
    const n = parseServiceName("ns/web.frontend");
    assert.equal(p.service(n), "/torca/naming/ns/web.frontend");
    assert.equal(p.endpoint(n, "ns:web/2"), "/torca/naming/ns/web.frontend/ns%3Aweb%2F2");
    assert.equal(decodeTaskId(encodeTaskId("ns:web/2")), "ns:web/2");
    assert.deepEqual(serviceOfPath("/torca", "/torca/naming/ns/web.frontend")?.key, "ns/web.frontend");
    assert.equal(serviceOfPath("/torca", "/torca/naming/ns"), undefined);
    assert.equal(serviceOfPath("/torca", "/other/naming/ns/x"), undefined);
  });
  test("record round trip and rejection of malformed data", () => {
    assert.deepEqual(decodeEndpointRecord(encodeEndpointRecord(rec)), rec);
    assert.equal(decodeEndpointRecord(Buffer.from("not json")), undefined);
    assert.equal(decodeEndpointRecord(Buffer.from(JSON.stringify({ ...rec, port: 70000 }))), undefined);
    assert.equal(decodeEndpointRecord(Buffer.from(JSON.stringify({ ...rec, ports: { http: "x" } }))), undefined);
    assert.equal(decodeEndpointRecord(Buffer.from(JSON.stringify({ ...rec, host: "" }))), undefined);
    const { attempt: _a, registeredAt: _r, ...old } = rec;
    assert.equal(decodeEndpointRecord(Buffer.from(JSON.stringify(old)))?.attempt, 0);
  });
  test("endpoints sort by task", () => {
    const e = (task: string): Endpoint => ({ host: "h", port: 1, ports: { p: 1 }, task, node: "n", job: "j" });
    assert.deepEqual(sortEndpoints([e("j/2"), e("j/10"), e("j/1")]).map((x) => x.task), ["j/1", "j/10", "j/2"]);
  });
});

describe("DNS names", () => {
  test("service, named port, node, zone, outside", () => {
    assert.deepEqual(parseDnsName("web.frontend.default.torca."), { kind: "service", namespace: "default", service: "web.frontend" });
    assert.deepEqual(parseDnsName("WEB.team-a.Torca"), { kind: "service", namespace: "team-a", service: "web" });
    assert.deepEqual(parseDnsName("_admin._tcp.web.default.torca."), { kind: "service", namespace: "default", service: "web", port: "admin" });
    assert.deepEqual(parseDnsName("agent-1.node.torca."), { kind: "node", node: "agent-1" });
    assert.deepEqual(parseDnsName("torca."), { kind: "zone" });
    assert.equal(parseDnsName("web.default.example.com."), undefined);
    assert.equal(parseDnsName("default.torca."), undefined);
    assert.equal(parseDnsName("_x._udp.web.default.torca."), undefined);
  });
});

describe("DNS answers", () => {
  const eps: Endpoint[] = [
    { host: "127.0.0.1", port: 20001, ports: { http: 20001, admin: 21001 }, task: "web/0", node: "agent-1", job: "web" },
    { host: "127.0.0.2", port: 20002, ports: { http: 20002 }, task: "web/1", node: "agent_2", job: "web" },
  ];
  const source: DnsSource = {
    resolveDetailed: async (name: string): Promise<Resolution> => {
      if (name === "broken") throw new Error("zookeeper away");
      return { name, endpoints: name === "web" ? eps : [], stale: false, version: 1 };
    },
    nodeHost: (label) => (label === "agent-1" ? "127.0.0.1" : undefined),
  };
  const ask = async (name: string, type: "A" | "SRV" | "AAAA" | "TXT") => {
    const wire = dnsPacket.encode({ type: "query", id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: "IN" }] });
    const resp = await answerDnsQuery(dnsPacket.decode(wire), source, { ttl: 5 });
    // Through the wire format and back, as a client sees it.
    return dnsPacket.decode(encodeWithinLimit(resp, 512)) as DecodedPacket & { rcode: string };
  };

  test("A: every endpoint address, authoritative, ttl, id and RD echoed", async () => {
    const r = await ask("web.default.torca", "A");
    assert.equal(r.rcode, "NOERROR");
    assert.equal(r.id, 4242);
    assert.ok(r.flag_aa && r.flag_rd && r.flag_qr);
    const a = (r.answers ?? []) as StringAnswer[];
    assert.deepEqual(a.map((x) => x.data).sort(), ["127.0.0.1", "127.0.0.2"]);
    assert.ok(a.every((x) => x.ttl === 5 && x.type === "A"));
  });
  test("SRV: first port, node targets, glue A records", async () => {
    const r = await ask("web.default.torca", "SRV");
    const srv = (r.answers ?? []) as SrvAnswer[];
    assert.deepEqual(srv.map((x) => [x.data.port, x.data.target]).sort(), [[20001, "agent-1.node.torca"], [20002, "agent-2.node.torca"]]);
    const glue = (r.additionals ?? []) as StringAnswer[];
    assert.deepEqual(glue.map((x) => [x.name, x.data]).sort(), [["agent-1.node.torca", "127.0.0.1"], ["agent-2.node.torca", "127.0.0.2"]]);
    assert.equal(nodeTarget("Agent_2"), "agent-2.node.torca");
  });
  test("SRV for a named port lists only endpoints that have it", async () => {
    const r = await ask("_admin._tcp.web.default.torca", "SRV");
    assert.deepEqual(((r.answers ?? []) as SrvAnswer[]).map((x) => x.data.port), [21001]);
  });
  test("unknown name → NXDOMAIN; outside the zone → REFUSED; lookup failure → SERVFAIL; other type → NODATA", async () => {
    assert.equal((await ask("nothing.default.torca", "A")).rcode, "NXDOMAIN");
    assert.equal((await ask("_nope._tcp.web.default.torca", "SRV")).rcode, "NXDOMAIN");
    assert.equal((await ask("example.com", "A")).rcode, "REFUSED");
    assert.equal((await ask("broken.default.torca", "A")).rcode, "SERVFAIL");
    const txt = await ask("web.default.torca", "TXT");
    assert.equal(txt.rcode, "NOERROR");
    assert.equal((txt.answers ?? []).length, 0);
  });
  test("node names answer from learned addresses", async () => {
    const r = await ask("agent-1.node.torca", "A");
    assert.deepEqual(((r.answers ?? []) as StringAnswer[]).map((x) => x.data), ["127.0.0.1"]);
    assert.equal((await ask("ghost.node.torca", "A")).rcode, "NXDOMAIN");
  });
  test("oversized answers are trimmed with TC set", async () => {
    const many: Endpoint[] = Array.from({ length: 60 }, (_, i) => ({ host: `10.0.${i >> 8}.${i & 255}`, port: 20000 + i, ports: { http: 20000 + i }, task: `big/${i}`, node: `n${i}`, job: "big" }));
    const big: DnsSource = { resolveDetailed: async (name) => ({ name, endpoints: many, stale: false, version: 1 }), nodeHost: () => undefined };
    const q = dnsPacket.decode(dnsPacket.encode({ type: "query", id: 1, questions: [{ type: "SRV", name: "big.default.torca" }] }));
    const wire = encodeWithinLimit(await answerDnsQuery(q, big), 512);
    assert.ok(wire.length <= 512);
    const r = dnsPacket.decode(wire);
    assert.ok(r.flag_tc);
    assert.ok((r.answers ?? []).length > 0 && (r.answers ?? []).length < 60);
  });
});

describe("serial reloads (SerialJob)", () => {
  /** A job whose runs wait for the test to settle them, in order. */
  function gatedJob() {
    const gates: { resolve: () => void; reject: (e: Error) => void }[] = [];
    let runs = 0;
    const job = new SerialJob(() => {
      runs += 1;
      return new Promise<void>((resolve, reject) => gates.push({ resolve, reject }));
    });
    const settle = async (how: "ok" | "fail") => {
      while (gates.length === 0) await new Promise((r) => setImmediate(r));
      const g = gates.shift()!;
      if (how === "ok") g.resolve();
      else g.reject(new Error("connection loss"));
    };
    return { job, settle, runs: () => runs };
  }

  test("requests made while a run is in flight are folded into exactly one more run", async () => {
    const { job, settle, runs } = gatedJob();
    const first = job.run();
    void job.run();
    void job.run();
    await settle("ok");
    await settle("ok");
    await first;
    assert.equal(runs(), 2);
  });

  test("a run that fails after a new request is superseded by it: the request is not lost", async () => {
    // The failed run read on a session that has since ended; the request came from the new session's reload.
    const { job, settle, runs } = gatedJob();
    const first = job.run();
    void job.run();
    await settle("fail");
    await settle("ok");
    await first;
    assert.equal(runs(), 2);
  });

  test("a run that fails with no request behind it reports its error", async () => {
    const { job, settle, runs } = gatedJob();
    const first = job.run();
    await settle("fail");
    await assert.rejects(first, /connection loss/);
    assert.equal(runs(), 1);
    // The next request starts a run of its own.
    const second = job.run();
    await settle("ok");
    await second;
    assert.equal(runs(), 2);
  });
});
