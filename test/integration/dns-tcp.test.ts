import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { EventEmitter } from "node:events";
import { connect } from "node:net";
import { promisify } from "node:util";
import * as dnsPacket from "dns-packet";
import type { DecodedPacket, SrvAnswer } from "dns-packet";
import { DnsServer } from "../../naming/dns.js";
import { frame, unframe } from "../../naming/dns-tcp.js";
import type { Endpoint } from "../../naming/layout.js";
import type { Resolution, Resolver } from "../../naming/resolver.js";

/*
 * The naming DNS server over UDP and TCP on one port, asked by `dig`
 * (bind9-dnsutils) as a resolver would: the same answer both ways, and an
 * answer too large for UDP truncated there (TC) and complete over TCP.
 * The endpoints come from a stand-in for the resolver: what is under test is
 * the transport, not the ZooKeeper watches (test/integration/naming.test.ts).
 */

const execFileAsync = promisify(execFile);

function endpoints(n: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    host: `127.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    port: 20000 + i,
    ports: { http: 20000 + i },
    task: `big/${i}`,
    node: `agent-${i}`,
    job: "big",
  }));
}

const NAMES: Record<string, Endpoint[]> = { small: endpoints(2), big: endpoints(60) };

/** Answers `small` and `big` in the default namespace. */
function standInResolver(): Resolver {
  const r = new EventEmitter() as EventEmitter & { resolveDetailed(name: string): Promise<Resolution> };
  r.resolveDetailed = (name) => Promise.resolve({ name, endpoints: NAMES[name] ?? [], stale: false, version: 1 });
  return r as unknown as Resolver;
}

interface Dig {
  flags: string[];
  answers: string[];
}

/** Runs dig and reads its header flags and answer section. */
async function dig(port: number, args: string[]): Promise<Dig> {
  const { stdout } = await execFileAsync("dig", ["@127.0.0.1", "-p", String(port), "+tries=1", "+time=3", "+noall", "+comments", "+answer", ...args]);
  const flagLine = /;; flags: ([a-z ]+);/.exec(stdout);
  assert.ok(flagLine, `dig printed no header:\n${stdout}`);
  const answers = stdout
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith(";"))
    .map((l) => l.replace(/\s+/g, " ").trim())
    .sort();
  return { flags: flagLine[1]!.trim().split(" "), answers };
}

describe("naming DNS over TCP", () => {
  let server: DnsServer;
  let port: number;

  before(async () => {
    server = new DnsServer({ resolver: standInResolver(), port: 0, host: "127.0.0.1", ttl: 5, tcpIdleMs: 500 });
    port = (await server.start()).port;
  });

  after(async () => {
    await server?.close();
  });

  test("dig +tcp gets the same answer as dig over UDP", async () => {
    for (const type of ["SRV", "A"]) {
      const udp = await dig(port, ["+notcp", type, "small.default.torca"]);
      const tcp = await dig(port, ["+tcp", type, "small.default.torca"]);
      assert.equal(udp.answers.length, 2, `${type} over UDP: ${udp.answers.join(" | ")}`);
      assert.deepEqual(tcp.answers, udp.answers);
      assert.ok(!udp.flags.includes("tc") && !tcp.flags.includes("tc"));
      assert.ok(tcp.flags.includes("aa"));
    }
    const missing = await execFileAsync("dig", ["@127.0.0.1", "-p", String(port), "+tcp", "+tries=1", "A", "nothing.default.torca"]);
    assert.match(missing.stdout, /status: NXDOMAIN/);
  });

  test("a large answer is truncated over UDP (TC) and complete over TCP; dig retries over TCP by itself", async () => {
    // +ignore: show the truncated UDP answer instead of retrying.
    const udp = await dig(port, ["+ignore", "+noedns", "SRV", "big.default.torca"]);
    assert.ok(udp.flags.includes("tc"), `flags: ${udp.flags.join(" ")}`);
    assert.ok(udp.answers.length > 0 && udp.answers.length < 60, `${udp.answers.length} records in 512 bytes`);
    // With EDNS the client's advertised size (dig: 1232 bytes) is used: more fits, still not all.
    const edns = await dig(port, ["+ignore", "SRV", "big.default.torca"]);
    assert.ok(edns.flags.includes("tc"));
    assert.ok(edns.answers.length > udp.answers.length && edns.answers.length < 60, `${edns.answers.length} records with EDNS`);

    const tcp = await dig(port, ["+tcp", "SRV", "big.default.torca"]);
    assert.equal(tcp.answers.length, 60);
    assert.ok(!tcp.flags.includes("tc"));
    assert.deepEqual(udp.answers.filter((a) => !tcp.answers.includes(a)), [], "the UDP records are a subset of the TCP answer");
    const retried = await dig(port, ["+noedns", "SRV", "big.default.torca"]);
    assert.equal(retried.answers.length, 60, "dig follows TC to TCP");
  });

  test("several queries on one connection are answered in order; an idle connection is closed", async () => {
    const sock = connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
    const names = ["big.default.torca", "small.default.torca", "nothing.default.torca"];
    // One write holding three framed queries, the last split across two writes.
    const wire = Buffer.concat(names.map((name, i) => frame(dnsPacket.encode({ type: "query", id: 100 + i, questions: [{ type: "SRV", name }] }))));
    sock.write(wire.subarray(0, wire.length - 5));
    setTimeout(() => sock.write(wire.subarray(wire.length - 5)), 50);
    let got = Buffer.alloc(0);
    const answers = await new Promise<(DecodedPacket & { rcode?: string })[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("three answers did not arrive")), 5000);
      sock.on("data", (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        const { messages } = unframe(got);
        if (messages.length === 3) {
          clearTimeout(timer);
          resolve(messages.map((m) => dnsPacket.decode(m) as DecodedPacket & { rcode?: string }));
        }
      });
    });
    assert.deepEqual(answers.map((a) => a.id), [100, 101, 102]);
    assert.equal((answers[0]!.answers as SrvAnswer[]).length, 60);
    assert.equal((answers[1]!.answers as SrvAnswer[]).length, 2);
    assert.equal(answers[2]!.rcode, "NXDOMAIN");
    // tcpIdleMs is 500 ms: the server closes the quiet connection.
    const t0 = Date.now();
    await new Promise<void>((resolve) => sock.once("close", () => resolve()));
    assert.ok(Date.now() - t0 < 3000, `closed after ${Date.now() - t0} ms idle`);
  });
});
