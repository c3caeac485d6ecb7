import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";
import * as dnsPacket from "dns-packet";
import type { Answer, DecodedPacket, Packet, Question } from "dns-packet";
import type { Logger } from "../src/common/logger.js";
import type { Endpoint } from "./layout.js";
import { InvalidNameError, serviceName } from "./names.js";
import type { Resolution, Resolver } from "./resolver.js";

/**
 * A small authoritative DNS server for the `torca.` zone, answering from the
 * resolver's watched cache (UDP only):
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

/** The UDP payload the client accepts: its EDNS size, else the classic 512 bytes. */
function payloadLimit(query: DecodedPacket): number {
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
  logger?: Logger;
}

/** The UDP server. Node addresses for SRV targets are learned from the resolver's answers. */
export class DnsServer {
  private socket?: Socket;
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

  async start(): Promise<{ host: string; port: number }> {
    const host = this.o.host ?? "127.0.0.1";
    const sock = createSocket(isIPv6(host) ? "udp6" : "udp4");
    this.socket = sock;
    this.o.resolver.on("change", this.onChange);
    sock.on("message", (msg, rinfo) => void this.handle(sock, msg, rinfo));
    sock.on("error", (e) => this.o.logger?.warn({ err: e }, "dns socket error"));
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.bind(this.o.port, host, () => {
        sock.off("error", reject);
        resolve();
      });
    });
    const addr = sock.address();
    return { host: addr.address, port: addr.port };
  }

  private async handle(sock: Socket, msg: Buffer, rinfo: RemoteInfo): Promise<void> {
    this.queries += 1;
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return; // not DNS: no answer, like most servers
    }
    if (query.type === "response") return;
    try {
      const resp = await answerDnsQuery(query, this.source, { ...(this.o.ttl !== undefined ? { ttl: this.o.ttl } : {}) });
      sock.send(encodeWithinLimit(resp, payloadLimit(query)), rinfo.port, rinfo.address);
    } catch (e) {
      this.o.logger?.warn({ err: e }, "dns answer failed");
    }
  }

  close(): Promise<void> {
    this.o.resolver.off("change", this.onChange);
    const sock = this.socket;
    this.socket = undefined;
    return new Promise((resolve) => (sock ? sock.close(() => resolve()) : resolve()));
  }
}
