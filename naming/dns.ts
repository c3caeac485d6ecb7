import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";
import * as dnsPacket from "dns-packet";
import type { Answer, DecodedPacket, Packet, Question } from "dns-packet";
import type { Logger } from "../src/common/logger.js";
import type { Endpoint } from "./layout.js";
import { InvalidNameError, serviceName } from "./names.js";
import type { Resolution, Resolver } from "./resolver.js";
import { DnsTcpListener } from "./dns-tcp.js";

/**
 * A small authoritative DNS server for the `torca.` zone, answering from the
 * resolver's watched cache, over UDP and TCP on the same port:
 *
 *   <service>.<namespace>.torca.               A / AAAA: every endpoint's address
 *                                              SRV: every endpoint's first port
 *   _<port>._tcp.<service>.<namespace>.torca.  SRV: that named port of every endpoint
 *   <node>.node.torca.                         A / AAAA: a node's address (SRV targets)
 *
 * The service part may have dots (`web.frontend.default.torca.`); the label
 * before `torca.` is the namespace. A name without endpoints is NXDOMAIN;
 * names outside the zone are REFUSED (this is not a recursive resolver).
 * Because SRV targets are `<node>.node.torca.`, the namespace `node` is not
 * reachable through DNS.
 *
 * A UDP answer larger than 512 bytes (or the EDNS size the client
 * advertises) is cut and carries the TC bit; the resolver then asks again
 * over TCP (dns-tcp.ts), where answers go up to 64 KiB.
 */

export const DNS_ZONE = "torca";
export const DEFAULT_DNS_TTL = 5;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export type DnsQuery =
  | { kind: "service"; namespace: string; service: string; port?: string }
  | { kind: "node"; node: string }
  | { kind: "zone" };

/** Maps a query name to what it asks for; undefined when it is outside the zone or malformed. */
export function parseDnsName(qname: string): DnsQuery | undefined {
  const labels = qname.toLowerCase().replace(/\.$/, "").split(".");
  if (labels.pop() !== DNS_ZONE) return undefined;
  if (labels.length === 0) return { kind: "zone" };
  if (labels.length === 2 && labels[1] === "node") return { kind: "node", node: labels[0]! };
  let port: string | undefined;
  if (labels[0]?.startsWith("_")) {
    if (labels.length < 4 || labels[1] !== "_tcp") return undefined;
    port = labels[0].slice(1);
    labels.splice(0, 2);
  }
  const namespace = labels.pop();
  if (!namespace || labels.length === 0) return undefined;
  try {
    const n = serviceName(namespace, labels.join("."));
    return { kind: "service", namespace: n.namespace, service: n.service, ...(port ? { port } : {}) };
  } catch (e) {
    if (e instanceof InvalidNameError) return undefined;
    throw e;
  }
}

/** A node id as one DNS label. */
export function nodeLabel(node: string): string {
  return node.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63) || "node";
}

export function nodeTarget(node: string): string {
  return `${nodeLabel(node)}.node.${DNS_ZONE}`;
}

function addressRecords(name: string, hosts: Iterable<string>, type: "A" | "AAAA", ttl: number): Answer[] {
  const want = type === "A" ? isIPv4 : isIPv6;
  return [...new Set(hosts)].filter((h) => want(h)).map((h) => ({ type, name, ttl, class: "IN" as const, data: h }));
}

/** What the server needs to answer: service lookups and the addresses of nodes seen in answers. */
export interface DnsSource {
  resolveDetailed(name: string): Promise<Resolution>;
  nodeHost(nodeLabel: string): string | undefined;
}

export interface AnswerOptions {
  ttl?: number;
}

/** Builds the response to one decoded query (pure apart from the lookups). */
export async function answerDnsQuery(query: DecodedPacket, source: DnsSource, opts: AnswerOptions = {}): Promise<Packet> {
  const ttl = opts.ttl ?? DEFAULT_DNS_TTL;
  const questions = query.questions ?? [];
  const base = (rcode: number, answers: Answer[] = [], additionals: Answer[] = []): Packet => ({
    type: "response",
    id: query.id ?? 0,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | (query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0) | rcode,
    questions,
    answers,
    additionals,
  });
  const opcode = (query as DecodedPacket & { opcode?: string }).opcode;
  if (opcode !== undefined && opcode !== "QUERY") return base(RCODE.NOTIMP);
  const q: Question | undefined = questions[0];
  if (!q || questions.length !== 1) return base(RCODE.FORMERR);
  const parsed = parseDnsName(q.name);
  if (!parsed) return base(q.name.toLowerCase().replace(/\.$/, "").endsWith(DNS_ZONE) ? RCODE.NXDOMAIN : RCODE.REFUSED);
  if (parsed.kind === "zone") return base(RCODE.NOERROR);
  if (parsed.kind === "node") {
    const host = source.nodeHost(parsed.node);
    if (!host) return base(RCODE.NXDOMAIN);
    if (q.type === "A" || q.type === "AAAA") return base(RCODE.NOERROR, addressRecords(q.name, [host], q.type, ttl));
    return base(RCODE.NOERROR);
  }
  let res: Resolution;
  try {
    res = await source.resolveDetailed(parsed.namespace === "default" ? parsed.service : `${parsed.namespace}/${parsed.service}`);
  } catch {
    return base(RCODE.SERVFAIL);
  }
  const eps: Endpoint[] = parsed.port ? res.endpoints.filter((e) => e.ports[parsed.port!] !== undefined) : res.endpoints;
  if (eps.length === 0) return base(RCODE.NXDOMAIN);
  const srv = (): Answer[] =>
    eps.map((e) => ({
      type: "SRV" as const,
      name: q.name,
      ttl,
      class: "IN" as const,
      data: { priority: 0, weight: 10, port: parsed.port ? e.ports[parsed.port]! : e.port, target: nodeTarget(e.node) },
    }));
  const glue = (): Answer[] => {
    const seen = new Map<string, string>();
    for (const e of eps) seen.set(nodeTarget(e.node), e.host);
    return [...seen].flatMap(([target, host]) => [...addressRecords(target, [host], "A", ttl), ...addressRecords(target, [host], "AAAA", ttl)]);
  };
  switch (q.type) {
    case "A":
    case "AAAA":
      return base(RCODE.NOERROR, addressRecords(q.name, eps.map((e) => e.host), q.type, ttl));
    case "SRV":
      return base(RCODE.NOERROR, srv(), glue());
    default:
      // dns-packet decodes type 255 as "ANY", which its type list leaves out.
      if ((q.type as string) === "ANY") return base(RCODE.NOERROR, [...srv(), ...addressRecords(q.name, eps.map((e) => e.host), "A", ttl)], glue());
      // The name exists but has no records of this type (NODATA).
      return base(RCODE.NOERROR);
  }
}

/** Largest DNS message over TCP (its length prefix is two bytes). */
export const TCP_MESSAGE_LIMIT = 0xffff;

/** The UDP payload the client accepts: its EDNS size, else the classic 512 bytes. */
export function udpPayloadLimit(query: DecodedPacket): number {
  const opt = (query.additionals ?? []).find((a) => a.type === "OPT") as { udpPayloadSize?: number } | undefined;
  return Math.min(Math.max(opt?.udpPayloadSize ?? 512, 512), 4096);
}

/** Encodes a response within the limit; drops records and sets TC when it does not fit. */
export function encodeWithinLimit(resp: Packet, limit: number): Buffer {
  let p = resp;
  let buf = dnsPacket.encode(p);
  while (buf.length > limit) {
    const additionals = p.additionals ?? [];
    const answers = p.answers ?? [];
    if (additionals.length) p = { ...p, additionals: additionals.slice(0, -1) };
    else if (answers.length) p = { ...p, answers: answers.slice(0, -1), flags: (p.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE };
    else break;
    buf = dnsPacket.encode(p);
  }
  return buf;
}

export interface DnsServerOptions {
  resolver: Resolver;
  port: number;
  /** Default 127.0.0.1: the server answers only on loopback unless told otherwise. */
  host?: string;
  ttl?: number;
  /** TCP connections are closed after this long without a query (default 10 s). */
  tcpIdleMs?: number;
  logger?: Logger;
}

/** Tries for a port both UDP and TCP can have, when the port is chosen by the system (port 0). */
const FREE_PORT_TRIES = 5;

/** The UDP and TCP server. Node addresses for SRV targets are learned from the resolver's answers. */
export class DnsServer {
  private socket?: Socket;
  private tcp?: DnsTcpListener;
  private readonly nodes = new Map<string, string>();
  private readonly onChange = (_name: string, endpoints: Endpoint[]) => this.learn(endpoints);
  queries = 0;

  constructor(private readonly o: DnsServerOptions) {}

  private learn(endpoints: Endpoint[]): void {
    for (const e of endpoints) this.nodes.set(nodeLabel(e.node), e.host);
  }

  private readonly source: DnsSource = {
    resolveDetailed: async (name) => {
      const r = await this.o.resolver.resolveDetailed(name);
      this.learn(r.endpoints);
      return r;
    },
    nodeHost: (label) => this.nodes.get(label),
  };

  /** Binds UDP, then TCP on the same port (with port 0, a port free for both). */
  async start(): Promise<{ host: string; port: number }> {
    const host = this.o.host ?? "127.0.0.1";
    this.o.resolver.on("change", this.onChange);
    for (let attempt = 1; ; attempt++) {
      const sock = await this.bindUdp(host, this.o.port);
      const port = sock.address().port;
      const tcp = new DnsTcpListener({ answer: (msg) => this.answer(msg, () => TCP_MESSAGE_LIMIT), ...(this.o.tcpIdleMs !== undefined ? { idleMs: this.o.tcpIdleMs } : {}), ...(this.o.logger ? { logger: this.o.logger } : {}) });
      try {
        await tcp.listen(port, host);
      } catch (e) {
        await new Promise<void>((resolve) => sock.close(() => resolve()));
        if (this.o.port === 0 && (e as NodeJS.ErrnoException).code === "EADDRINUSE" && attempt < FREE_PORT_TRIES) continue;
        this.o.resolver.off("change", this.onChange);
        throw e;
      }
      this.socket = sock;
      this.tcp = tcp;
      return { host: sock.address().address, port };
    }
  }

  private async bindUdp(host: string, port: number): Promise<Socket> {
    const sock = createSocket(isIPv6(host) ? "udp6" : "udp4");
    sock.on("message", (msg, rinfo) => void this.handleUdp(sock, msg, rinfo));
    sock.on("error", (e) => this.o.logger?.warn({ err: e }, "dns socket error"));
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.bind(port, host, () => {
        sock.off("error", reject);
        resolve();
      });
    });
    return sock;
  }

  private async handleUdp(sock: Socket, msg: Buffer, rinfo: RemoteInfo): Promise<void> {
    const out = await this.answer(msg, udpPayloadLimit);
    if (out) sock.send(out, rinfo.port, rinfo.address);
  }

  /** The encoded answer to one message within the transport's limit; undefined for what is not a DNS query. */
  private async answer(msg: Buffer, limitOf: (query: DecodedPacket) => number): Promise<Buffer | undefined> {
    this.queries += 1;
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return undefined; // not DNS: no answer, like most servers
    }
    if (query.type === "response") return undefined;
    try {
      const resp = await answerDnsQuery(query, this.source, { ...(this.o.ttl !== undefined ? { ttl: this.o.ttl } : {}) });
      return encodeWithinLimit(resp, limitOf(query));
    } catch (e) {
      this.o.logger?.warn({ err: e }, "dns answer failed");
      return undefined;
    }
  }

  close(): Promise<void> {
    this.o.resolver.off("change", this.onChange);
    const sock = this.socket;
    const tcp = this.tcp;
    this.socket = undefined;
    this.tcp = undefined;
    return Promise.all([new Promise<void>((resolve) => (sock ? sock.close(() => resolve()) : resolve())), tcp?.close()]).then(() => undefined);
  }
}
